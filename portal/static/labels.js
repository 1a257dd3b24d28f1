/**
 * The server's names for the contract's enumerations (portal/alerts/texts.py), rendered by
 * base.html as the JSON data block #ems-labels: the browser keeps no list of its own.
 */
export function labels(enumeration) {
  const el = document.getElementById("ems-labels");
  try {
    return (el && JSON.parse(el.textContent)[enumeration]) || {};
  } catch {
    return {};
  }
}
