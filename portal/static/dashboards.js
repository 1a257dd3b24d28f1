/* EMS dashboards: live device figures, hourly and daily charts, and their tables.
 *
 * The templates (templates/dashboards/*.html) mark what this script works on:
 *   [data-dashboard=overview|device|fleet]  the page, with data-time-zone (the user's zone)
 *   [data-device-id] with [data-field=…]    figures that "live" and "device_status" events
 *                                           (realtime.js) update
 *   [data-chart=day|range]                  chart boxes; each keeps the numbers it shows in
 *                                           data-labels / data-values / data-qualities
 * Tables are always filled from the API's JSON; the charts (dashboards-charts.js) are drawn
 * on top of them. The entry module of the dashboard pages (templates/dashboards/assets.html).
 */
import "./portal.js";
import {drawBars, fmt, row} from "./dashboards-charts.js";
import {realtime} from "./realtime.js";

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

function clock(tz) {
  const format = new Intl.DateTimeFormat("en-CA", {
    timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  });
  function parts(iso) {
    const out = {};
    format.formatToParts(new Date(iso)).forEach(function (p) { out[p.type] = p.value; });
    return out;
  }
  return {
    date: function (iso) { const p = parts(iso); return p.year + "-" + p.month + "-" + p.day; },
    dateTime: function (iso) {
      const p = parts(iso);
      return p.year + "-" + p.month + "-" + p.day + " " + p.hour + ":" + p.minute + ":" + p.second;
    },
  };
}

function each(root, selector, fn) {
  Array.prototype.forEach.call(root.querySelectorAll(selector), fn);
}

function setField(root, field, text) {
  each(root, '[data-field="' + field + '"]', function (el) { el.textContent = text; });
}

/* --- live figures ------------------------------------------------------------------------ */

function setState(root, state) {
  each(root, '[data-field="state"]', function (el) {
    el.textContent = state;
    el.className = "state state-" + state;
  });
}

function applyLive(el, event, time) {
  setField(el, "last-ts", time.dateTime(event.ts));
  setField(el, "register", fmt(event.energy_kwh));
  setField(el, "power", fmt(event.power_w, 0));
  setState(el, "online");
  if (event.hour_kwh == null || !el.dataset.hour) return;
  const shown = Date.parse(el.dataset.hour), hour = Date.parse(event.hour);
  if (hour < shown) return; // a late reading for a past hour: the current hour is unchanged
  let today = parseFloat(el.dataset.todayKwh || "0");
  if (hour === shown) today += event.hour_kwh - parseFloat(el.dataset.hourKwh || "0");
  else if (time.date(event.hour) === time.date(el.dataset.hour)) today += event.hour_kwh;
  else today = event.hour_kwh; // the first hour of a new day
  el.dataset.hour = event.hour;
  el.dataset.hourKwh = event.hour_kwh;
  el.dataset.todayKwh = today;
  setField(el, "hour-kwh", fmt(event.hour_kwh));
  setField(el, "today", fmt(today));
  const limit = parseFloat(el.dataset.limit || event.max_hourly_kwh || "0");
  each(el, '[data-field="hour-bar"]', function (bar) {
    bar.setAttribute("aria-valuenow", event.hour_kwh);
    bar.classList.toggle("over", limit > 0 && event.hour_kwh > limit);
    bar.firstElementChild.style.width = Math.min(100, (100 * event.hour_kwh) / limit) + "%";
  });
}

function subscribe(handlers) {
  Object.keys(handlers).forEach(function (type) { realtime.on(type, handlers[type]); });
}

function liveFigures(page, time, extra) {
  function targets(id) { return page.querySelectorAll('[data-device-id="' + id + '"]'); }
  subscribe({
    live: function (event) {
      Array.prototype.forEach.call(targets(event.device_id), function (el) {
        applyLive(el, event, time);
      });
      if (extra && extra.live) extra.live(event);
    },
    device_status: function (event) {
      if (extra && extra.status) extra.status(event);
      Array.prototype.forEach.call(targets(event.device_id), function (el) {
        setState(el, event.state);
      });
    },
  });
}

/* --- one device: a day by the hour, a period by the day ---------------------------------- */

function addDays(day, k) {
  const d = new Date(day + "T00:00:00Z");
  d.setUTCDate(d.getUTCDate() + k);
  return d.toISOString().slice(0, 10);
}

function period(day, range) {
  if (range === "year") return [day.slice(0, 4) + "-01-01", day.slice(0, 4) + "-12-31"];
  if (range === "month") {
    const first = day.slice(0, 8) + "01";
    return [first, addDays(addDays(first, 31).slice(0, 8) + "01", -1)];
  }
  const weekday = (new Date(day + "T00:00:00Z").getUTCDay() + 6) % 7; // Monday = 0
  return [addDays(day, -weekday), addDays(day, 6 - weekday)];
}

function hourLabels(hours) {
  const labels = hours.map(function (h) { return h.hour.slice(11, 16); });
  return labels.map(function (label, i) {
    const twice = labels.indexOf(label) !== labels.lastIndexOf(label);
    const offset = hours[i].hour.slice(19) || "Z";
    return twice ? label + " (" + (offset === "Z" ? "+00:00" : offset) + ")" : label;
  });
}

function DeviceView(page) {
  this.page = page;
  this.id = page.dataset.deviceId;
  this.limit = parseFloat(page.dataset.limit);
  this.day = page.dataset.day;
  this.range = page.dataset.range;
  this.dayData = null;
  this.tickets = {};
}

DeviceView.prototype.q = function (testid) {
  return this.page.querySelector('[data-testid="' + testid + '"]');
};

DeviceView.prototype.fetch = function (path, summary, render) {
  // Only the newest request of each kind may render: an older answer arriving late (the
  // user picked another day meanwhile) is dropped.
  const self = this;
  const key = render === this.renderDay ? "day" : "range";
  const ticket = (this.tickets[key] = (this.tickets[key] || 0) + 1);
  function current() { return self.tickets[key] === ticket; }
  return fetch("/api/v1/devices/" + this.id + path, {headers: {Accept: "application/json"}})
    .then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) throw new Error(body.detail || response.statusText);
        return body;
      });
    })
    .then(function (body) { if (current()) render.call(self, body); })
    .catch(function (err) {
      if (!current()) return;
      summary.textContent = "Could not load: " + err.message;
      summary.classList.add("error");
    });
};

DeviceView.prototype.loadDay = function () {
  const summary = this.q("day-summary");
  summary.classList.remove("error");
  each(this.page, '[data-export="hourly"], [data-export="readings"]', function (a) {
    a.search = "?from=" + this.day + "&to=" + this.day + "&kind=" + a.dataset.export;
  }.bind(this));
  return this.fetch("/consumption/hourly?date=" + this.day, summary, this.renderDay);
};

DeviceView.prototype.renderDay = function (data) {
  this.dayData = data;
  let text = data.date + ": " + fmt(data.total_kwh) + " kWh in " + data.hours_in_day + " hours";
  if (data.flagged_hours) text += " · " + data.flagged_hours + " estimated or corrected";
  if (data.missing_hours) text += " · " + data.missing_hours + " without data";
  this.q("day-summary").textContent = text;
  const labels = hourLabels(data.hours);
  const tbody = this.q("day-table").tBodies[0];
  tbody.textContent = "";
  data.hours.forEach(function (h, i) {
    row(tbody, [
      {text: labels[i]},
      {text: fmt(h.energy_kwh), num: true, field: "energy"},
      {text: h.quality},
      {text: String(h.readings), num: true},
    ], h.quality);
  });
  drawBars(this.q("day-chart"), labels,
           data.hours.map(function (h) { return h.energy_kwh; }),
           data.hours.map(function (h) { return h.quality; }),
           {limit: data.max_hourly_kwh,
            axisLabels: data.hours.map(function (h) { return h.hour.slice(11, 13); })});
};

DeviceView.prototype.loadRange = function () {
  const span = period(this.day, this.range);
  const summary = this.q("range-summary");
  summary.classList.remove("error");
  this.q("csv-range").search = "?from=" + span[0] + "&to=" + span[1] + "&kind=hourly";
  each(this.q("range-tabs"), "a[data-range]", function (a) {
    if (a.dataset.range === this.range) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }.bind(this));
  return this.fetch("/consumption/daily?from=" + span[0] + "&to=" + span[1], summary,
                    this.renderRange);
};

DeviceView.prototype.renderRange = function (data) {
  let text = data.from + " … " + data.to + ": " + fmt(data.total_kwh) + " kWh";
  if (data.peak_day) text += " · peak day " + data.peak_day.date + " (" +
    fmt(data.peak_day.energy_kwh) + " kWh)";
  if (data.peak_hour) text += " · peak hour " + data.peak_hour.hour.slice(0, 16).replace("T", " ") +
    " (" + fmt(data.peak_hour.energy_kwh) + " kWh)";
  this.q("range-summary").textContent = text;
  const tbody = this.q("range-table").tBodies[0];
  tbody.textContent = "";
  data.days.forEach(function (d) {
    row(tbody, [
      {text: d.date},
      {text: fmt(d.energy_kwh), num: true, field: "energy"},
      {text: d.quality},
      {text: d.hours_with_data + " / " + d.hours_in_day, num: true},
      {text: fmt(d.peak_hour_kwh), num: true},
    ], d.quality);
  });
  const days = data.days;
  const long = days.length > 31;
  drawBars(this.q("range-chart"),
           days.map(function (d) { return d.date; }),
           days.map(function (d) { return d.energy_kwh; }),
           days.map(function (d) { return d.quality; }),
           {axisLabels: days.map(function (d) {
              if (long) return MONTHS[parseInt(d.date.slice(5, 7), 10) - 1];
              return days.length > 7 ? d.date.slice(8) : d.date.slice(5);
            }),
            tick: long ? function (i) { return days[i].date.slice(8) === "01"; } : null});
};

DeviceView.prototype.remember = function () {
  history.replaceState(null, "", "?date=" + this.day + "&range=" + this.range);
};

DeviceView.prototype.live = function (event) {
  // Today's chart follows the current hour as readings arrive.
  const data = this.dayData;
  if (!data || event.device_id !== this.id || event.hour_kwh == null) return;
  const at = Date.parse(event.hour);
  const hour = data.hours.filter(function (h) { return Date.parse(h.hour) === at; })[0];
  if (!hour) return;
  data.total_kwh += event.hour_kwh - (hour.energy_kwh || 0);
  if (hour.quality === "missing") data.missing_hours -= 1;
  hour.energy_kwh = event.hour_kwh;
  hour.quality = event.quality || "measured";
  hour.readings = Math.max(hour.readings, 1);
  this.renderDay(data);
};

DeviceView.prototype.start = function (time) {
  const self = this;
  const form = this.q("day-form");
  const picker = this.q("day-picker");
  function pick(event) {
    if (event) event.preventDefault();
    if (!picker.value || picker.value === self.day) return;
    self.day = picker.value;
    form.elements.range.value = self.range;
    self.remember();
    self.loadDay();
    self.loadRange();
  }
  form.addEventListener("submit", pick);
  picker.addEventListener("change", pick);
  each(this.q("range-tabs"), "a[data-range]", function (a) {
    a.addEventListener("click", function (event) {
      event.preventDefault();
      self.range = a.dataset.range;
      form.elements.range.value = self.range;
      self.remember();
      self.loadRange();
    });
  });
  liveFigures(document, time, {live: this.live.bind(this)});
  this.loadDay();
  this.loadRange();
};

/* --- fleet ---------------------------------------------------------------------------------- */

function fleet(page, time) {
  const table = page.querySelector('[data-testid="fleet-devices"]');
  const states = {};
  each(table, "tr[data-device-id]", function (tr) {
    states[tr.dataset.deviceId] = tr.querySelector('[data-field="state"]').textContent.trim();
  });
  function bump(state, delta) {
    const el = page.querySelector('[data-count="' + state + '"]');
    if (el) el.textContent = String(parseInt(el.textContent, 10) + delta);
  }
  function moveTo(id, state) {
    const before = states[id];
    if (before === undefined || before === state) return;
    states[id] = state;
    bump(before, -1);
    bump(state, +1);
  }
  liveFigures(page, time, {
    live: function (event) { moveTo(event.device_id, "online"); },
    status: function (event) { moveTo(event.device_id, event.state); },
  });
  const filter = page.querySelector('[data-filter="fleet-devices"]');
  filter.addEventListener("input", function () {
    const needle = filter.value.trim().toLowerCase();
    each(table, "tbody tr[data-device-id]", function (tr) {
      tr.hidden = needle !== "" && tr.textContent.toLowerCase().indexOf(needle) < 0;
    });
  });
}

// A module runs once the document is parsed (modules are deferred): the page is all there.
function start() {
  const page = document.querySelector("[data-dashboard]");
  if (!page) return;
  // The bars' initial widths: the Content-Security-Policy allows no inline style attribute.
  each(page, "[data-share]", function (bar) { bar.style.width = bar.dataset.share + "%"; });
  const time = clock(page.dataset.timeZone || "UTC");
  const kind = page.dataset.dashboard;
  if (kind === "device") new DeviceView(page).start(time);
  else if (kind === "fleet") fleet(page, time);
  else liveFigures(page, time);
}

start();
