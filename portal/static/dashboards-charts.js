/* EMS dashboards: bar charts of hourly or daily energy, and the rows of their tables.
 *
 * uPlot (portal/frontend, served at /static/vendor/uplot) draws the bars: it is small (~50 kB),
 * fast with thousands of points and made for time series. Bars are coloured by quality
 * (measured / estimated or corrected / no data, a short grey stub, never a zero), with the
 * hourly limit as a dashed line. Each chart box keeps what it shows in data-labels,
 * data-values and data-qualities. Without uPlot (npm ci not run) the box says so and the
 * table beside it still carries every number.
 */

// Imported on demand rather than statically: a missing file (npm ci not run) or a failed
// load must cost the charts only, never the tables (a failed static import stops the page's
// whole module graph).
const uPlot = await import("./vendor/uplot/uPlot.esm.js").then(
  (module) => module.default,
  () => null,
);

const COLORS = {measured: "#0b6bcb", estimated: "#f29d38", missing: "#dde3ea", limit: "#c0392b"};
const CHART_HEIGHT = 280;

export function fmt(value, digits) {
  return value == null ? "—" : Number(value).toFixed(digits == null ? 3 : digits);
}

function flagged(quality) {
  return quality !== "measured" && quality !== "missing";
}

export function drawBars(box, labels, values, qualities, options) {
  box.dataset.labels = JSON.stringify(labels);
  box.dataset.values = JSON.stringify(values);
  box.dataset.qualities = JSON.stringify(qualities);
  if (box.plot) { box.plot.destroy(); box.plot = null; }
  box.textContent = "";
  if (!uPlot) {
    box.classList.add("no-library");
    box.textContent = "Chart library not installed (make install); the table has the numbers.";
    return;
  }
  const n = values.length;
  const xs = values.map(function (_, i) { return i; });
  const bars = uPlot.paths.bars({size: [0.8, 48]});
  const top = Math.max.apply(null, values.concat([options.limit || 0, 0]).filter(function (v) {
    return v != null;
  })) || 1;
  function part(keep, height) {
    return values.map(function (v, i) { return keep(qualities[i]) ? height || v : null; });
  }
  // A missing value is a short hatched stub, so "no data" is never mistaken for zero.
  const data = [
    xs,
    part(function (q) { return q === "measured"; }),
    part(flagged),
    part(function (q) { return q === "missing"; }, top * 0.03),
  ];
  const series = [
    {},
    {fill: COLORS.measured + "cc", stroke: COLORS.measured, paths: bars, points: {show: false}},
    {fill: COLORS.estimated + "cc", stroke: COLORS.estimated, paths: bars, points: {show: false}},
    {fill: COLORS.missing, stroke: "#9aa5b5", paths: bars, points: {show: false}},
  ];
  if (options.limit) {
    data.push(xs.map(function () { return options.limit; }));
    series.push({stroke: COLORS.limit, dash: [6, 4], width: 2, points: {show: false}});
  }
  const axis = options.axisLabels || labels;
  const ticks = xs.filter(options.tick || function () { return true; });
  box.plot = new uPlot({
    width: box.clientWidth || 800,
    height: CHART_HEIGHT,
    legend: {show: false}, // the page's legend explains the colours; the table has values
    cursor: {drag: {x: false, y: false}, points: {show: false}},
    scales: {x: {time: false, range: [-0.5, n - 0.5]}, y: {range: [0, top * 1.1]}},
    axes: [
      {splits: function () { return ticks; },
       values: function (_u, splits) { return splits.map(function (i) { return axis[i]; }); }},
      {label: "kWh", size: 64},
    ],
    series: series,
  }, data, box);
}

window.addEventListener("resize", function () {
  Array.prototype.forEach.call(document.querySelectorAll("[data-chart]"), function (box) {
    if (box.plot) box.plot.setSize({width: box.clientWidth, height: CHART_HEIGHT});
  });
});

export function row(tbody, cells, quality) {
  const tr = document.createElement("tr");
  tr.className = "q-" + quality;
  cells.forEach(function (cell) {
    const td = document.createElement("td");
    td.textContent = cell.text;
    if (cell.num) td.className = "num";
    if (cell.field) td.dataset.field = cell.field;
    tr.appendChild(td);
  });
  tbody.appendChild(tr);
}

