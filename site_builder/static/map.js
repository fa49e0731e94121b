/* map.html: fit-to-width toggle, and highlight a concept's edges on hover or focus. */
(function () {
  "use strict";
  var box = document.getElementById("map-box");
  var fit = document.getElementById("map-fit");
  var svg = document.getElementById("kb-whole-map");
  if (!box || !svg) return;
  var tools = document.getElementById("map-tools");
  if (tools) {
    tools.hidden = false;
    tools.querySelectorAll("input[type=checkbox]").forEach(function (cb) {
      cb.addEventListener("change", function () { svg.classList.toggle("hide-" + cb.value, !cb.checked); });
    });
  }
  if (fit) {
    fit.addEventListener("click", function () {
      var on = !box.classList.contains("fit");
      box.classList.toggle("fit", on);
      fit.setAttribute("aria-pressed", on ? "true" : "false");
      fit.textContent = on ? "按原始大小显示" : "缩放到页面宽度";
    });
  }
  var edges = {}, nodes = {};
  svg.querySelectorAll("line.e").forEach(function (l) {
    [l.getAttribute("data-s"), l.getAttribute("data-t")].forEach(function (id) { (edges[id] = edges[id] || []).push(l); });
  });
  svg.querySelectorAll("a.n").forEach(function (a) { nodes[a.getAttribute("data-id")] = a; });
  var lit = [];
  function clear() { lit.forEach(function (el) { el.classList.remove("hl"); }); lit = []; svg.classList.remove("dim"); }
  function light(id) {
    clear();
    var own = edges[id] || [];
    if (nodes[id]) lit.push(nodes[id]);
    own.forEach(function (l) {
      lit.push(l);
      var other = l.getAttribute("data-s") === id ? l.getAttribute("data-t") : l.getAttribute("data-s");
      if (nodes[other]) lit.push(nodes[other]);
    });
    lit.forEach(function (el) { el.classList.add("hl"); });
    svg.classList.add("dim");
  }
  function over(ev) {
    var a = ev.target.closest ? ev.target.closest("a.n") : null;
    if (a) light(a.getAttribute("data-id"));
  }
  svg.addEventListener("mouseover", over);
  svg.addEventListener("focusin", over);
  svg.addEventListener("mouseleave", clear);
  svg.addEventListener("focusout", clear);
})();
