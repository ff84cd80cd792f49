// fit(strict) lists what keeps the page from fitting its viewport; see
// Fit in webtest.go. It leaves the page as it found it: details closed
// again, nothing focused, every scroll back at its start.
(strict) => {
  const problems = [];
  const root = document.documentElement;
  const vw = root.clientWidth, vh = root.clientHeight;
  const describe = (el) => {
    let d = el.tagName.toLowerCase();
    if (el.id) d += '#' + el.id;
    else if (el.classList.length) d += '.' + [...el.classList].join('.');
    const text = (el.innerText || el.value || el.getAttribute('aria-label') || '').replace(/\s+/g, ' ').trim();
    return text ? `${d} "${text.slice(0, 40)}"` : d;
  };
  if (root.scrollWidth > vw) {
    problems.push(`the document is ${root.scrollWidth} px wide, wider than the ${vw} px viewport`);
  }
  const opened = [...document.querySelectorAll('details:not([open])')];
  opened.forEach((d) => { d.open = true; });
  const scrolled = new Set();
  const controls = document.querySelectorAll(
    'a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]:not([tabindex="-1"])');
  for (const el of controls) {
    if (el.getClientRects().length === 0 || getComputedStyle(el).visibility === 'hidden') continue; // not shown
    el.focus({ preventScroll: true }); // a skip link shows only when focused
    el.scrollIntoView({ block: 'center', inline: 'center' });
    for (let a = el.parentElement; a; a = a.parentElement) {
      if (a.scrollLeft === 0 && a.scrollTop === 0) continue;
      scrolled.add(a);
      if (a === root || a === document.body) continue;
      const st = getComputedStyle(a);
      const sideways = a.scrollLeft !== 0, userCan = (o) => o === 'auto' || o === 'scroll';
      if ((sideways && !userCan(st.overflowX)) || (a.scrollTop !== 0 && !userCan(st.overflowY))) {
        problems.push(`${describe(el)} is hidden in ${describe(a)}, which clips it and cannot be scrolled`);
      } else if (strict && sideways) {
        problems.push(`${describe(el)} is reached only by scrolling ${describe(a)} sideways`);
      }
    }
    const r = el.getBoundingClientRect();
    if (r.left < -0.5 || r.right > vw + 0.5 || r.top < -0.5 || r.bottom > vh + 0.5) {
      // Taller or wider than the viewport: its visible part must show.
      if (r.width <= vw && r.height <= vh) {
        problems.push(`${describe(el)} cannot be scrolled into view (at ${Math.round(r.left)},${Math.round(r.top)}, ${Math.round(r.width)}x${Math.round(r.height)})`);
        continue;
      }
    }
    // A link that wraps has a box per line: look at the first line's.
    const box = el.getClientRects()[0];
    const x = Math.min(Math.max(box.left + box.width / 2, 0), vw - 1), y = Math.min(Math.max(box.top + box.height / 2, 0), vh - 1);
    const hit = document.elementFromPoint(x, y);
    if (!hit || !(el === hit || el.contains(hit) || (el.labels && [...el.labels].some((l) => l.contains(hit))))) {
      problems.push(`${describe(el)} is covered${hit ? ' by ' + describe(hit) : ''} at its centre`);
    }
  }
  if (document.activeElement) document.activeElement.blur();
  opened.forEach((d) => { d.open = false; });
  scrolled.forEach((a) => { a.scrollLeft = 0; a.scrollTop = 0; });
  window.scrollTo(0, 0);
  return problems;
}
