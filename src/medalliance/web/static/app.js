// The web client's one script (an ES module; the CSP forbids inline scripts and handlers).
// - htmx requests carry the page's CSRF token (meta csrf-token) as X-CSRF-Token.
// - Live events: the server-sent events of /events are re-dispatched on <body> as
//   "alliance:<EventType>" (e.g. alliance:ReferralCreated), so a template refreshes a part with
//   hx-get="..." hx-trigger="alliance:ReferralCreated from:body"; a short notice shows in #live.
// - Charts: <div class="chart" data-chart-url="/api/v1/..."> is drawn with Apache ECharts from
//   the JSON option that URL answers; charts inside content htmx swaps in are drawn too.

const csrf = document.querySelector('meta[name="csrf-token"]')?.getAttribute("content") ?? "";

document.body.addEventListener("htmx:configRequest", (event) => {
  if (csrf) event.detail.headers["X-CSRF-Token"] = csrf;
});

function drawCharts(root) {
  if (typeof echarts === "undefined") return;
  for (const element of root.querySelectorAll(".chart[data-chart-url]")) {
    if (element.dataset.drawn) continue;
    element.dataset.drawn = "1";
    fetch(element.dataset.chartUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
      .then((option) => {
        const chart = echarts.init(element, null, { renderer: "canvas" });
        chart.setOption(option);
        window.addEventListener("resize", () => chart.resize());
      })
      .catch(() => element.classList.add("chart-failed"));
  }
}

function listen() {
  const url = document.body.dataset.events;
  if (!url || typeof EventSource === "undefined") return;
  const live = document.getElementById("live");
  const source = new EventSource(url);
  source.onmessage = (message) => {
    let detail;
    try {
      detail = JSON.parse(message.data);
    } catch {
      return;
    }
    document.body.dispatchEvent(new CustomEvent(`alliance:${detail.type}`, { detail, bubbles: true }));
    if (live) {
      live.hidden = false;
      live.textContent = `${detail.type} · ${detail.status ?? ""} · #${detail.block}`;
      live.dataset.lastEvent = detail.type;
    }
  };
}

document.addEventListener("DOMContentLoaded", () => {
  drawCharts(document);
  listen();
});
document.body?.addEventListener("htmx:afterSwap", (event) => drawCharts(event.target));
