// buildstate dashboard: live updates without a reload. Listens to the server's
// events stream and, when a build changes, fetches this page again and swaps its
// <main id="live"> (htmx does the request and the swap). A page that watches one
// build (data-watch="<build id>") refreshes only for that build's changes.
(function () {
  "use strict";
  if (!window.EventSource || !document.getElementById("live")) return;
  var queued = false;
  function refresh() {
    if (queued) return;
    queued = true;
    // Changes arrive in bursts (one per build): one refresh for a burst.
    setTimeout(function () {
      queued = false;
      var url = window.location.pathname + window.location.search;
      window.htmx.ajax("GET", url, { target: "#live", select: "#live", swap: "outerHTML" });
    }, 50);
  }
  var events = new EventSource("/api/v1/events");
  events.addEventListener("build", function (e) {
    var live = document.getElementById("live");
    var watch = live && live.getAttribute("data-watch");
    if (watch) {
      try {
        if (JSON.parse(e.data).id !== watch) return;
      } catch (_) {
        return;
      }
    }
    refresh();
  });
  events.addEventListener("reload", refresh);
  window.addEventListener("pagehide", function () { events.close(); });
})();
