/* adtrack viewability measurement (MRC display): docs/tracking.md, "Viewability".
   An impression is "measured" once this script observes its creative, and "viewable" once at
   least 50 % of the creative's pixels (30 % from 242,500 px2 on) have been in view of a visible,
   focused tab for one continuous second. One beacon per state, sent to the tag's host. */
(function (w, d) {
  "use strict";
  var queue = w.adtrackView = w.adtrackView || [];
  if (queue.measuring) return;
  queue.measuring = 1;
  var LARGE_PX = 242500, STEPS = [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1];

  function send(url, token, state) {
    var target = url + "?state=" + state + "&token=" + encodeURIComponent(token);
    try {
      if (navigator.sendBeacon && navigator.sendBeacon(target)) return;
    } catch (e) { /* fall back to an image request */ }
    new Image().src = target;
  }

  // The tab is in front and its window has the focus. A frame of another origin cannot see
  // its page's focus: there, page visibility alone decides.
  function focused() {
    if (d.hasFocus()) return true;
    try { return w.top.document.hasFocus(); } catch (e) { return w.top !== w; }
  }

  function measure(item) {
    var el = item.e ? d.getElementById(item.e) : item.p;
    if (!el) {
      if (item.e && d.readyState === "loading") {
        d.addEventListener("DOMContentLoaded", function () { measure(item); });
      }
      return;
    }
    if (!w.IntersectionObserver) return; // cannot observe: not measured
    var sent = {}, ratio = 0, large = false, timer = 0, observer;
    function beacon(state) {
      if (!sent[state]) { sent[state] = 1; send(item.u, item.t, state); }
    }
    function inView() {
      return ratio >= (large ? 0.3 : 0.5) && d.visibilityState === "visible" && focused();
    }
    function update() {
      if (sent.viewable) return;
      if (inView()) {
        if (!timer) timer = setTimeout(second, 1000);
      } else if (timer) {
        clearTimeout(timer);
        timer = 0;
      }
    }
    function second() {
      timer = 0;
      if (!inView()) return update();
      beacon("viewable");
      observer.disconnect();
      d.removeEventListener("visibilitychange", update);
      w.removeEventListener("focus", update);
      w.removeEventListener("blur", update);
    }
    observer = new IntersectionObserver(function (entries) {
      var entry = entries[entries.length - 1], box = entry.boundingClientRect;
      var area = box.width * box.height;
      large = area >= LARGE_PX;
      ratio = entry.isIntersecting && area > 0 ? entry.intersectionRatio : 0;
      beacon("measured");
      update();
    }, { threshold: STEPS });
    observer.observe(el);
    d.addEventListener("visibilitychange", update);
    w.addEventListener("focus", update);
    w.addEventListener("blur", update);
  }

  for (var i = 0; i < queue.length; i++) measure(queue[i]);
  queue.push = function (item) { measure(item); return queue.length; };
})(window, document);
