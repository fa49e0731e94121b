/* search.html: results for ?q=, updated as you type. */
(function () {
  "use strict";
  var input = document.getElementById("search-q");
  var list = document.getElementById("search-results");
  var status = document.getElementById("search-status");
  if (!input || !list || !window.KBSearch) return;

  function run(q, push) {
    list.textContent = "";
    q = q.trim();
    document.title = (q ? "搜索：" + q : "搜索") + " · llm-kb 大模型面试题库";
    if (!q) { status.textContent = "输入概念名、别名（中英文均可）或题目中的词。"; return; }
    var hits = window.KBSearch.search(q, 100);
    var terms = window.KBSearch.highlightTerms(q);
    status.textContent = hits.length ? "找到 " + hits.length + (hits.length === 100 ? "+" : "") + " 条结果" : "没有找到“" + q + "”。试试别名、英文缩写或更短的词。";
    hits.forEach(function (h) { list.appendChild(window.KBSite.resultItem(h, terms)); });
    if (push) {
      var url = new URL(location.href);
      url.searchParams.set("q", q);
      try { history.replaceState(null, "", url.toString()); } catch (e) { /* file:// in some browsers */ }
    }
  }
  var q = new URLSearchParams(location.search).get("q") || "";
  input.value = q;
  run(q, false);
  var timer = null;
  input.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(function () { run(input.value, true); }, 80); });
  if (!q) input.focus();
})();
