/* Forms marked data-confirm="question" ask before they submit (a destructive action).
 *
 * A script file rather than onsubmit="return confirm(…)": the Content-Security-Policy allows
 * no inline event handlers.
 */
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form instanceof HTMLFormElement ? form.getAttribute("data-confirm") : null;
  if (question && !window.confirm(question)) event.preventDefault();
});
