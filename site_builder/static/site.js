/* On every page: "/" focuses search, live results under the header box (search data loaded on
 * first use), <details> opened when the URL points into one, answers opened for printing. */
(function () {
  "use strict";
  var root = document.body.getAttribute("data-root") || "";

  function loadScript(src) {
    return new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = src;
      s.onload = resolve;
      s.onerror = function () { reject(new Error("cannot load " + src)); };
      document.head.appendChild(s);
    });
  }
  var searchReady = null;
  function ensureSearch() {
    if (window.KBSearch && window.KB_SEARCH) return Promise.resolve();
    if (!searchReady) {
      searchReady = (window.KB_SEARCH ? Promise.resolve() : loadScript(root + "static/data/search.js"))
        .then(function () { return window.KBSearch ? null : loadScript(root + "static/search.js"); });
    }
    return searchReady;
  }
  window.KBSite = { loadScript: loadScript, ensureSearch: ensureSearch, root: root };

  function typing(el) {
    if (!el) return false;
    var tag = el.tagName;
    return el.isContentEditable || tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT";
  }
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "/" && !ev.ctrlKey && !ev.metaKey && !ev.altKey && !typing(document.activeElement)) {
      var box = document.querySelector("main .kb-search-input") || document.getElementById("kb-q");
      if (box) { ev.preventDefault(); box.focus(); box.select(); }
    }
  });

  /* header search: live results */
  var input = document.getElementById("kb-q");
  var pop = document.getElementById("kb-q-pop");
  function closePop() { if (pop) { pop.hidden = true; input.setAttribute("aria-expanded", "false"); } }
  function render() {
    var q = input.value.trim();
    if (!q) { closePop(); return; }
    ensureSearch().then(function () {
      if (input.value.trim() !== q) return;
      var hits = window.KBSearch.search(q, 8);
      var terms = window.KBSearch.highlightTerms(q);
      pop.textContent = "";
      if (!hits.length) {
        var none = document.createElement("p");
        none.className = "r-empty";
        none.textContent = "没有找到“" + q + "”";
        pop.appendChild(none);
      } else {
        var ol = document.createElement("ol");
        hits.forEach(function (h) { ol.appendChild(resultItem(h, terms)); });
        var all = document.createElement("li");
        all.className = "r-all";
        var a = document.createElement("a");
        a.href = root + "search.html?q=" + encodeURIComponent(q);
        a.textContent = "查看全部结果 →";
        all.appendChild(a);
        ol.appendChild(all);
        pop.appendChild(ol);
      }
      pop.hidden = false;
      input.setAttribute("aria-expanded", "true");
    }).catch(function () { closePop(); });
  }
  function resultItem(h, terms) {
    var li = document.createElement("li");
    var a = document.createElement("a");
    a.href = root + h.url;
    var kind = document.createElement("span");
    kind.className = "kind";
    kind.textContent = h.kind === "e" ? "概念" : "题目";
    a.appendChild(kind);
    var t = document.createElement("span");
    t.className = "r-title";
    window.KBSearch.appendHighlighted(t, h.title, terms);
    a.appendChild(t);
    var sub = document.createElement("span");
    sub.className = "r-sub";
    sub.textContent = h.categoryName + " · " + (h.kind === "e" ? h.sub : "来自「" + h.sub + "」");
    a.appendChild(sub);
    li.appendChild(a);
    return li;
  }
  window.KBSite.resultItem = resultItem;
  if (input && pop) {
    var timer = null;
    input.addEventListener("focus", function () { ensureSearch().catch(function () {}); if (input.value.trim()) render(); });
    input.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(render, 60); });
    input.addEventListener("keydown", function (ev) {
      if (ev.key === "Escape") { closePop(); }
      if (ev.key === "ArrowDown" && !pop.hidden) {
        var first = pop.querySelector("a");
        if (first) { ev.preventDefault(); first.focus(); }
      }
    });
    pop.addEventListener("keydown", function (ev) {
      var links = Array.prototype.slice.call(pop.querySelectorAll("a"));
      var i = links.indexOf(document.activeElement);
      if (ev.key === "ArrowDown" && i < links.length - 1) { ev.preventDefault(); links[i + 1].focus(); }
      if (ev.key === "ArrowUp") { ev.preventDefault(); (i > 0 ? links[i - 1] : input).focus(); }
      if (ev.key === "Escape") { closePop(); input.focus(); }
    });
    document.addEventListener("click", function (ev) {
      if (!pop.hidden && !pop.contains(ev.target) && ev.target !== input) closePop();
    });
  }

  /* open the <details> a URL fragment points at (e.g. entry.html#q-some-question) */
  function openTarget() {
    var id = decodeURIComponent(location.hash.slice(1));
    if (!id) return;
    var el = document.getElementById(id);
    if (!el) return;
    var d = el.tagName === "DETAILS" ? el : el.closest("details");
    while (d) {
      d.open = true;
      d = d.parentElement ? d.parentElement.closest("details") : null;
    }
    el.scrollIntoView();
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();

  /* entry pages: open or close every answer */
  var toggle = document.getElementById("toggle-answers");
  if (toggle) {
    var qs = document.querySelectorAll("details.question");
    toggle.hidden = false;
    toggle.addEventListener("click", function () {
      var open = Array.prototype.some.call(qs, function (d) { return !d.open; });
      qs.forEach(function (d) { d.open = open; });
      toggle.textContent = open ? "收起全部答案" : "展开全部答案";
    });
  }

  /* printing: every answer open, then back as it was */
  var closed = [];
  window.addEventListener("beforeprint", function () {
    closed = Array.prototype.filter.call(document.querySelectorAll("details"), function (d) { return !d.open; });
    closed.forEach(function (d) { d.open = true; });
  });
  window.addEventListener("afterprint", function () { closed.forEach(function (d) { d.open = false; }); closed = []; });
})();
