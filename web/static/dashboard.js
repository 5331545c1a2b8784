// mockmdm dashboard: refresh the parts marked data-refresh in place, and
// ask before a form marked data-confirm is sent. No build step, no library.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (ev) {
      if (!window.confirm(form.dataset.confirm)) { ev.preventDefault(); }
    });
  });
  document.querySelectorAll("[data-refresh]").forEach(function (el) {
    var every = parseInt(el.dataset.every, 10) || 2000;
    var busy = false;
    setInterval(function () {
      if (busy || document.hidden) { return; }
      busy = true;
      fetch(el.dataset.refresh, { credentials: "same-origin", headers: { "X-Dashboard-Fragment": "1" } })
        .then(function (resp) {
          if (resp.status === 401) { window.location.reload(); return null; }
          return resp.ok ? resp.text() : null;
        })
        .then(function (html) {
          if (html === null) { return; }
          // Keep open what the person opened.
          var open = {};
          el.querySelectorAll("details[open][data-uuid]").forEach(function (d) { open[d.dataset.uuid] = true; });
          el.innerHTML = html;
          el.querySelectorAll("details[data-uuid]").forEach(function (d) { if (open[d.dataset.uuid]) { d.open = true; } });
        })
        .catch(function () {})
        .finally(function () { busy = false; });
    }, every);
  });
});
