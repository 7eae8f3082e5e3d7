// Bidao dashboard: the live stream's state in the page, and the charts. No inline script
// (the pages' Content-Security-Policy allows script from this server only).
(function () {
  "use strict";
  // The stream's "ready" event puts "live" into #live-state (sse-swap) once the server has
  // subscribed this page; a lost connection says so until the next "ready".
  function offline() {
    var el = document.getElementById("live-state");
    if (!el) { return; }
    document.body.classList.add("offline");
    el.textContent = el.dataset.off;
  }
  document.addEventListener("htmx:sseOpen", function () { document.body.classList.remove("offline"); });
  // A live refresh keeps what a person typed or chose (hx-preserve) and an opened "more".
  var moreOpen = false;
  document.addEventListener("htmx:beforeSwap", function () {
    var more = document.getElementById("more-actions");
    moreOpen = !!(more && more.open);
  });
  document.addEventListener("htmx:afterSwap", function () {
    var more = document.getElementById("more-actions");
    if (more && moreOpen) { more.open = true; }
  });
  document.addEventListener("htmx:sseError", offline);
  document.addEventListener("htmx:sseClose", offline);
  // A part that answers 401 means the session ended: go to the sign-in page.
  document.addEventListener("htmx:responseError", function (e) {
    if (e.detail.xhr && e.detail.xhr.status === 401) { window.location.assign("/signin"); }
  });

  function charts() {
    var source = document.getElementById("chart-data");
    if (!source || typeof window.echarts === "undefined") { return; }
    var data = JSON.parse(source.textContent);
    var s = data.series;
    var base = {
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      grid: { left: 40, right: 10, top: 40, bottom: 30, containLabel: true },
      xAxis: { type: "category", data: data.names },
    };
    var specs = {
      requests: Object.assign({}, base, {
        yAxis: { type: "value", minInterval: 1 },
        series: [
          { name: s.requests.name, type: "bar", data: s.requests.data, itemStyle: { color: "#b3261e" } },
          { name: s.closed.name, type: "bar", data: s.closed.data, itemStyle: { color: "#1a7f37" } },
        ],
      }),
      rates: Object.assign({}, base, {
        yAxis: { type: "value", min: 0, max: 100, axisLabel: { formatter: "{value}%" } },
        series: [
          { name: s.accept.name, type: "bar", data: s.accept.data },
          { name: s.arrive.name, type: "bar", data: s.arrive.data },
          { name: s.satisfied.name, type: "bar", data: s.satisfied.data },
        ],
      }),
    };
    document.querySelectorAll(".chart[data-chart]").forEach(function (el) {
      var chart = window.echarts.init(el, null, { renderer: "canvas" });
      chart.setOption(specs[el.dataset.chart]);
      window.addEventListener("resize", function () { chart.resize(); });
    });
  }

  // The installers' page: the running check's part, replaced by each "check" event of its
  // stream. EventSource reconnects by itself after a lost connection; the stream ends (and
  // the page closes it) when the check does, passed or not.
  function installCheck() {
    var box = document.getElementById("check-live");
    var note = document.getElementById("check-live-state");
    if (!box || !box.dataset.stream || box.dataset.state !== "running" || !window.EventSource) { return; }
    var source = new EventSource(box.dataset.stream);
    function say(on) {
      if (!note) { return; }
      note.hidden = false;
      note.textContent = on ? note.dataset.on : note.dataset.off;
      document.body.classList.toggle("offline", !on);
    }
    source.addEventListener("open", function () { say(true); });
    source.addEventListener("error", function () {
      if (source.readyState === EventSource.CLOSED) { say(false); }
      else if (box.dataset.state === "running") { say(false); }
    });
    source.addEventListener("check", function (e) {
      box.innerHTML = e.data;
      say(true);
      var part = box.firstElementChild;
      if (!part) { return; }
      box.dataset.state = part.dataset.state;
      var state = document.getElementById("install-state");
      if (state) {
        state.textContent = part.dataset.deviceStateWord;
        state.className = "badge big s-" + part.dataset.deviceState;
      }
      if (part.dataset.state !== "running") {
        source.close();
        if (note) { note.hidden = true; }
        document.body.classList.remove("offline");
        // "The check has started" is no longer news.
        var done = document.querySelector("#check #done");
        if (done) { done.remove(); }
      }
    });
  }
  function ready() { charts(); installCheck(); }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
}());
