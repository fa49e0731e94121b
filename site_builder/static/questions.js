/* questions.html: filter the static list by category, tag, difficulty and text. */
(function () {
  "use strict";
  var form = document.getElementById("q-filters");
  if (!form) return;
  var cat = document.getElementById("qf-cat"), tag = document.getElementById("qf-tag");
  var diff = document.getElementById("qf-d"), text = document.getElementById("qf-text");
  var count = document.getElementById("q-count"), none = document.getElementById("q-none");
  var items = Array.prototype.slice.call(document.querySelectorAll(".qlist li"));
  var groups = Array.prototype.slice.call(document.querySelectorAll(".qgroup"));
  var lower = items.map(function (li) { return li.textContent.toLowerCase(); });
  var params = new URLSearchParams(location.search);
  function setSel(sel, v) { if (v && Array.prototype.some.call(sel.options, function (o) { return o.value === v; })) sel.value = v; }
  setSel(cat, params.get("cat")); setSel(tag, params.get("tag")); setSel(diff, params.get("d"));
  text.value = params.get("text") || "";
  function apply(update) {
    var c = cat.value, t = tag.value, d = diff.value, q = text.value.trim().toLowerCase();
    var shown = 0;
    items.forEach(function (li, i) {
      var ok = (!c || li.getAttribute("data-cat") === c) && (!d || li.getAttribute("data-d") === d) &&
        (!t || (" " + li.getAttribute("data-tags") + " ").indexOf(" " + t + " ") !== -1) && (!q || lower[i].indexOf(q) !== -1);
      li.hidden = !ok;
      if (ok) shown++;
    });
    groups.forEach(function (g) { g.hidden = !g.querySelector(".qlist li:not([hidden])"); });
    count.textContent = shown === items.length ? "共 " + items.length + " 道题" : "显示 " + shown + " / " + items.length + " 道题";
    none.hidden = shown !== 0;
    if (update) {
      var url = new URL(location.href);
      [["cat", c], ["tag", t], ["d", d], ["text", text.value.trim()]].forEach(function (p) {
        if (p[1]) url.searchParams.set(p[0], p[1]); else url.searchParams.delete(p[0]);
      });
      try { history.replaceState(null, "", url.toString()); } catch (e) { /* ignore */ }
    }
  }
  form.addEventListener("submit", function (ev) { ev.preventDefault(); apply(true); });
  [cat, tag, diff].forEach(function (s) { s.addEventListener("change", function () { apply(true); }); });
  text.addEventListener("input", function () { apply(true); });
  apply(false);
})();
