/* Forms marked data-confirm="question" ask before they submit (a destructive action).
 *
 * A script file rather than onsubmit="return confirm(…)": the Content-Security-Policy allows
 * no inline event handlers.
 */
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form instanceof HTMLFormElement ? form.getAttribute("data-confirm") : null;
    if (question && !window.confirm(question)) event.preventDefault();
  });
})();
