/* adtrack console behaviour: dialogs, pickers, select-all, copy buttons, test hits, chart.
   Plain JavaScript on top of htmx; every control also works from the keyboard. */
(function () {
  "use strict";

  function $(selector, root) { return (root || document).querySelector(selector); }
  function $all(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }

  function showNotice(message, kind) {
    var box = $("#notice");
    if (!box) return;
    box.innerHTML = "";
    var p = document.createElement("p");
    p.className = "notice " + (kind || "error");
    p.textContent = message;
    box.appendChild(p);
  }

  /* --- the dialog --------------------------------------------------------------------- */

  var lastOpener = null;

  function dialog() { return $("#dialog"); }

  /* The first field in error (a form sent back), else the one marked autofocus, else the
     first control. The autofocus marks are then dropped: htmx would focus them again when the
     swap settles (20 ms later), taking the focus from whatever the user went on to. */
  function focusFirst(root) {
    var target = $("[aria-invalid=true]:not([type=hidden])", root) || $("[autofocus]", root) ||
      $("input:not([type=hidden]):not([disabled]), select, textarea, button:not(.close)", root);
    if (target) target.focus();
    $all("[autofocus]", root).forEach(function (el) { el.removeAttribute("autofocus"); });
  }

  function openDialog() {
    var d = dialog();
    if (!d) return;
    if (!d.open) {
      lastOpener = document.activeElement;
      d.showModal();
    }
    focusFirst(d);
  }

  function closeDialog() {
    var d = dialog();
    if (d && d.open) d.close();
  }

  document.addEventListener("close", function (event) {
    if (event.target === dialog()) {
      $("#dialog-body").innerHTML = "";
      if (lastOpener && document.body.contains(lastOpener)) lastOpener.focus();
      lastOpener = null;
    }
  }, true);

  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.detail.target;
    if (target && target.id === "dialog-body") {
      openDialog();
    }
  });

  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    var text = (xhr && xhr.responseText) || "The request failed.";
    if (text.length > 400 || text.indexOf("<") !== -1) text = "The request failed (HTTP " + xhr.status + ").";
    var d = dialog();
    var errorBox = d && d.open ? $(".dialog-error", d) : null;
    if (errorBox) { errorBox.textContent = text; errorBox.hidden = false; }
    else showNotice(text, "error");
  });

  document.addEventListener("htmx:sendError", function () {
    showNotice("The server cannot be reached.", "error");
  });

  document.addEventListener("click", function (event) {
    var el = event.target.closest("[data-close-dialog]");
    if (el) { event.preventDefault(); closeDialog(); return; }

    /* Close menus (More Actions, Creative) when a choice is made or a click lands outside. */
    $all("details.menu[open], details.navmenu[open]").forEach(function (menu) {
      if (!menu.contains(event.target) || event.target.closest("[role=menu] button, ul a")) {
        menu.removeAttribute("open");
      }
    });
  });

  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") return;
    $all("details.menu[open], details.navmenu[open]").forEach(function (menu) {
      menu.removeAttribute("open");
      var summary = $("summary", menu);
      if (summary) summary.focus();
    });
  });

  /* Forms that destroy something ask first. */
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.matches("form[data-confirm]") && !window.confirm(form.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });

  /* --- list selection ----------------------------------------------------------------- */

  function syncSelectAll(form) {
    var all = $("[data-select-all]", form);
    if (!all) return;
    var boxes = $all("input[name=ids]", form);
    var checked = boxes.filter(function (b) { return b.checked; }).length;
    all.checked = boxes.length > 0 && checked === boxes.length;
    all.indeterminate = checked > 0 && checked < boxes.length;
    var counter = $("[data-selected-count]", form);
    if (counter) counter.textContent = checked ? checked + " selected" : "";
  }

  document.addEventListener("change", function (event) {
    var el = event.target;
    if (el.matches("[data-select-all]")) {
      var form = el.form || el.closest("form");
      $all("input[name=ids]", form).forEach(function (b) { b.checked = el.checked; });
      syncSelectAll(form);
    } else if (el.matches("input[name=ids]")) {
      syncSelectAll(el.form || el.closest("form"));
    }
  });

  /* Bulk actions and export need a selection. */
  document.addEventListener("htmx:confirm", function (event) {
    var el = event.detail.elt;
    if (!el.matches("[data-needs-selection]")) return;
    var form = el.form || el.closest("form");
    var chosen = $all("input[name=ids]:checked", form).length;
    if (!chosen) {
      event.preventDefault();
      showNotice("Select at least one tracker first (the checkbox to its left).", "error");
    }
  });

  /* --- pickers (line item, publisher) ------------------------------------------------- */

  document.addEventListener("click", function (event) {
    var toggle = event.target.closest("[data-picker-toggle]");
    if (toggle) {
      event.preventDefault();
      var panel = document.getElementById(toggle.getAttribute("aria-controls"));
      var open = panel.hidden;
      panel.hidden = !open;
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      if (open) {
        var search = $("input[type=search]", panel);
        if (search) search.focus();
      }
      return;
    }
    var pick = event.target.closest("[data-pick]");
    if (pick) {
      event.preventDefault();
      var group = pick.closest("[data-picker]");
      var input = $("input[type=hidden][name=" + pick.getAttribute("data-pick") + "]", group);
      var label = $(".chosen .value", group);
      input.value = pick.getAttribute("data-value");
      label.textContent = pick.getAttribute("data-label");
      label.classList.remove("none");
      $all("[data-pick]", group).forEach(function (b) { b.setAttribute("aria-pressed", b === pick ? "true" : "false"); });
      var panelEl = $(".picker", group);
      var toggleEl = $("[data-picker-toggle]", group);
      panelEl.hidden = true;
      toggleEl.setAttribute("aria-expanded", "false");
      toggleEl.focus();
      input.dispatchEvent(new Event("change", { bubbles: true }));
    }
  });

  /* Enter in a picker's search box searches; it must not submit the dialog's form. */
  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && event.target.matches(".picker input[type=search]")) {
      event.preventDefault();
      if (window.htmx) window.htmx.trigger(event.target, "search");
    }
  });

  /* --- copy buttons ------------------------------------------------------------------- */

  document.addEventListener("click", function (event) {
    var btn = event.target.closest("[data-copy]");
    if (!btn) return;
    var source = document.getElementById(btn.getAttribute("data-copy"));
    if (!source) return;
    var text = source.value || source.textContent;
    function done() {
      var old = btn.getAttribute("data-label") || btn.textContent;
      btn.setAttribute("data-label", old);
      btn.textContent = "Copied";
      setTimeout(function () { btn.textContent = old; }, 1500);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { source.select(); document.execCommand("copy"); done(); });
    } else {
      source.select();
      document.execCommand("copy");
      done();
    }
  });

  /* --- fire a test hit ---------------------------------------------------------------- */

  document.addEventListener("click", function (event) {
    var btn = event.target.closest("[data-test-hit]");
    if (!btn) return;
    var url = btn.getAttribute("data-test-hit").replace("[CACHEBUSTER]", String(Date.now()) + Math.floor(Math.random() * 1000));
    var status = document.getElementById(btn.getAttribute("aria-describedby"));
    var img = new Image();
    function report(text) { if (status) status.textContent = text; }
    img.onload = function () { report("Test hit sent to " + url); };
    img.onerror = function () {
      report("Test hit sent to " + url + ". The answer was not an image: normal for click trackers " +
        "(they redirect). If no hit appears below, this browser cannot reach the tag host.");
    };
    img.src = url;
    report("Sending test hit…");
  });

  /* --- the report chart ----------------------------------------------------------------- */

  function drawChart() {
    var dataEl = document.getElementById("chart-data");
    var canvas = document.getElementById("report-chart");
    if (!dataEl || !canvas || !window.Chart) return;
    var data = JSON.parse(dataEl.textContent);
    var colours = ["#1f5fbf", "#e07b00", "#2e8b57", "#8e44ad", "#c0392b", "#16a085"];
    if (canvas._chart) canvas._chart.destroy();
    canvas._chart = new window.Chart(canvas, {
      type: data.labels.length > 1 ? "line" : "bar",
      data: {
        labels: data.labels,
        datasets: data.series.map(function (s, i) {
          var colour = colours[i % colours.length];
          /* Distinct dashes and markers: series that overlap stay visible, also without colour. */
          return { label: s.label, data: s.values, borderColor: colour, backgroundColor: colour, tension: 0, fill: false,
                   borderDash: [[], [6, 4], [2, 3]][i % 3], pointStyle: ["circle", "rectRot", "triangle"][i % 3],
                   pointRadius: 4, borderWidth: 2 };
        })
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } }
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawChart();
    $all("form").forEach(syncSelectAll);
  });
  document.addEventListener("htmx:afterSettle", function () {
    drawChart();
    $all("form").forEach(syncSelectAll);
  });
})();
