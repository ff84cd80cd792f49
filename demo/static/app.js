// The demo's only script: it starts lapse's browser client on signed-in
// pages with the options the server put in <meta name="lapse-config">.
import { start, formatCountdown } from '/lapse/web/lapse-client.js';

const meta = document.querySelector('meta[name="lapse-config"]');
if (meta) {
  const options = JSON.parse(meta.content);
  // The browser tests run the demo on a fake clock and give the client
  // the same one (the client's `now` option), so that they decide when
  // time passes instead of waiting for it.
  if (typeof window.lapseTestClock === 'function') options.now = window.lapseTestClock;
  const client = start(options);
  // For poking at from the console (and for the browser tests).
  window.lapse = client;
  const events = (window.lapseEvents = []);
  for (const type of ['state', 'warning', 'warningend', 'extended', 'signedout']) {
    client.on(type, () => events.push({ type, at: client.now() }));
  }
  // The footer shows the idle deadline as the client sees it, so the
  // mechanism is visible in the demo. It is decoration: the client
  // decides nothing from it.
  const clock = document.getElementById('session-clock');
  if (clock) {
    const show = () => {
      const st = client.state;
      if (!st.session || st.ended) return;
      clock.textContent = st.phase === 'active'
        ? `(${formatCountdown(st.remaining)} left without activity${st.kind === 'absolute' ? ': time limit' : ''})`
        : '';
    };
    show();
    setInterval(show, 1000);
  }
}
