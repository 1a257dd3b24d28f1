/* What every signed-in page runs: the realtime socket, the alerts bell and toasts, and the
 * confirmation of destructive forms. base.html loads it, or a page's own entry module that
 * imports it first (chat.js, dashboards.js): one <script type="module"> per page. */
import "./realtime.js";
import "./alerts.js";
import "./confirm.js";
