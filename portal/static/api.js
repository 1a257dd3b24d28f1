/* The portal's JSON API from the browser: same-origin, and every request with a body echoes
 * the csrftoken cookie in X-CSRF-Token, as the portal's CSRF guard wants. */

function csrf() {
  const found = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return found ? decodeURIComponent(found[1]) : "";
}

/* api("GET", path) or api("POST", path, body): the parsed JSON answer, or an Error carrying
 * the server's `detail` and the HTTP `status`. */
export function api(method, path, body) {
  const options = {method, credentials: "same-origin", headers: {Accept: "application/json"}};
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.headers["X-CSRF-Token"] = csrf();
    options.body = JSON.stringify(body);
  }
  return fetch(path, options).then((response) =>
    response
      .json()
      .catch(() => ({}))
      .then((data) => {
        if (!response.ok) {
          const error = new Error(data.detail || "the server answered " + response.status);
          error.status = response.status;
          throw error;
        }
        return data;
      }),
  );
}
