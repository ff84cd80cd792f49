// lapse-start.js starts lapse's browser client for an app behind lapse's
// forward-auth gateway, with one line in the app's pages:
//
//   <script type="module" src="/.lapse/web/lapse-start.js"></script>
//
// The client talks to the prefix this file is served under (its own URL
// without /web/lapse-start.js: "/.lapse") and sends a signed-out user to
// lapse's signed-out page there. A page may change any option with
// <meta name="lapse-config" content='{"signedOutUrl": "/bye"}'>. The
// started client is window.lapse, for the page's own code.
import { start } from './lapse-client.js';

const base = new URL('..', import.meta.url).pathname.replace(/\/$/, '');
let options = {};
const meta = document.querySelector('meta[name="lapse-config"]');
if (meta) {
  try {
    options = JSON.parse(meta.content);
  } catch (e) {
    console.error('lapse: <meta name="lapse-config"> is not JSON:', e);
  }
}
window.lapse = start({ endpoint: base, signedOutUrl: `${base}/signed-out`, ...options });
