/* practice.html: a random question (with filters), reveal its answer, next; the question of the
 * day by date, from the schedule the build precomputed with kb.quiz (same as `kb daily`).
 * Answers live in shards (static/data/answers-N.js), loaded by script tag when first asked. */
(function () {
  "use strict";
  var Q = window.KB_QUESTIONS, D = window.KB_DAILY;
  if (!Q) return;
  var DIFF = { 1: "基础", 2: "进阶", 3: "深入" };
  var byId = {};
  Q.qs.forEach(function (q) { byId[q[0]] = q; });
  var $ = function (id) { return document.getElementById(id); };
  var cat = $("pf-cat"), tag = $("pf-tag"), diff = $("pf-d");

  function loadShard(n) {
    window.KB_ANSWERS = window.KB_ANSWERS || {};
    if (window.KB_ANSWERS[n]) return Promise.resolve(window.KB_ANSWERS[n]);
    return window.KBSite.loadScript("static/data/answers-" + n + ".js").then(function () { return window.KB_ANSWERS[n]; });
  }

  /* one question card: meta, text, entry link, reveal button, answer */
  function Card(prefix) {
    this.card = $(prefix + "-card"); this.meta = $(prefix + "-meta"); this.q = $(prefix + "-q");
    this.link = $(prefix + "-link"); this.reveal = $(prefix + "-reveal"); this.answer = $(prefix + "-answer");
    this.current = null;
    var self = this;
    this.reveal.addEventListener("click", function () { self.toggle(); });
  }
  Card.prototype.show = function (q, extra) {
    this.current = q;
    this.meta.textContent = "";
    var parts = [Q.cats[q[3]][1], Q.entries[q[1]]].concat(extra ? [extra] : []);
    var span = document.createElement("span");
    span.textContent = parts.join(" · ");
    this.meta.appendChild(span);
    var d = document.createElement("span");
    d.className = "diff d" + q[4];
    d.textContent = "难度：" + DIFF[q[4]];
    this.meta.appendChild(d);
    this.q.textContent = q[2];
    this.link.href = q[1] + ".html#q-" + q[0];
    this.link.textContent = "在「" + Q.entries[q[1]] + "」中查看";
    this.answer.hidden = true;
    this.answer.textContent = "";
    this.reveal.textContent = "显示答案";
    this.reveal.setAttribute("aria-expanded", "false");
    this.card.hidden = false;
  };
  Card.prototype.toggle = function () {
    var self = this, q = this.current;
    if (!q) return;
    if (!this.answer.hidden) {
      this.answer.hidden = true;
      this.reveal.textContent = "显示答案";
      this.reveal.setAttribute("aria-expanded", "false");
      return;
    }
    loadShard(q[6]).then(function (shard) {
      if (self.current !== q) return;
      // answer HTML is rendered by the build from the bank (raw HTML in entries is escaped there)
      self.answer.innerHTML = (shard && shard[q[0]]) || "<p>（没有找到答案）</p>";
      self.answer.hidden = false;
      self.reveal.textContent = "隐藏答案";
      self.reveal.setAttribute("aria-expanded", "true");
    }).catch(function () {
      self.answer.textContent = "答案文件加载失败。";
      self.answer.hidden = false;
    });
  };

  /* random practice */
  var card = new Card("p");
  var params = new URLSearchParams(location.search);
  function setSel(sel, v) { if (v && Array.prototype.some.call(sel.options, function (o) { return o.value === v; })) sel.value = v; }
  setSel(cat, params.get("cat")); setSel(tag, params.get("tag")); setSel(diff, params.get("d"));
  var tagIndex = {};
  Q.tags.forEach(function (t, i) { tagIndex[t[1]] = i; });
  var deck = [], pos = 0;
  function pool() {
    var c = cat.value, t = tag.value, d = diff.value;
    var ci = c ? Q.cats.findIndex(function (x) { return x[0] === c; }) : -1;
    var ti = t ? tagIndex[t] : -1;
    return Q.qs.filter(function (q) {
      return (ci < 0 || q[3] === ci) && (!d || String(q[4]) === d) && (ti === undefined ? false : ti < 0 || q[5].indexOf(ti) !== -1);
    });
  }
  function shuffle(list) {
    for (var i = list.length - 1; i > 0; i--) {
      var j = Math.floor(Math.random() * (i + 1));
      var x = list[i]; list[i] = list[j]; list[j] = x;
    }
    return list;
  }
  function reshuffle() {
    deck = shuffle(pool());
    pos = 0;
    $("p-count").textContent = "符合条件的题目：" + deck.length + " 道";
  }
  function next() {
    if (!deck.length) { card.card.hidden = true; $("p-count").textContent = "没有符合条件的题目。"; return; }
    if (pos >= deck.length) { shuffle(deck); pos = 0; }
    if (card.current && deck.length > 1 && deck[pos] === card.current) pos = (pos + 1) % deck.length;
    card.show(deck[pos++], "第 " + pos + " / " + deck.length + " 题");
  }
  function filtersChanged() {
    var url = new URL(location.href);
    [["cat", cat.value], ["tag", tag.value], ["d", diff.value]].forEach(function (p) {
      if (p[1]) url.searchParams.set(p[0], p[1]); else url.searchParams.delete(p[0]);
    });
    url.searchParams.delete("q");
    try { history.replaceState(null, "", url.toString()); } catch (e) { /* ignore */ }
    reshuffle();
    next();
  }
  [cat, tag, diff].forEach(function (s) { s.addEventListener("change", filtersChanged); });
  $("p-filters").addEventListener("submit", function (ev) { ev.preventDefault(); filtersChanged(); });
  $("p-next").addEventListener("click", function () { next(); $("p-next").textContent = "下一题"; });
  reshuffle();
  var wanted = params.get("q");
  if (wanted && byId[wanted]) { card.show(byId[wanted]); $("p-next").textContent = "下一题"; }

  /* question of the day */
  var input = $("d-date");
  if (!D || !input) return;
  var daily = new Card("d");
  function iso(d) {
    return d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" + String(d.getDate()).padStart(2, "0");
  }
  var start = new Date(D.start + "T00:00:00");
  function showDay(day) {
    var offset = Math.round((new Date(day + "T00:00:00") - start) / 86400000);
    var idx = offset >= 0 && offset < D.days.length ? D.days[offset] : -1;
    var q = idx >= 0 ? byId[D.qs[idx][0]] : null;
    $("d-none").hidden = !!q;
    if (!q) { daily.card.hidden = true; daily.current = null; $("d-none").textContent = offset >= 0 && offset < D.days.length ? "这一天没有题目。" : "这一天不在本次构建预先计算的范围内。"; return; }
    daily.show(q, day);
  }
  var today = iso(new Date());
  input.value = today < input.min ? input.min : today > input.max ? input.max : today;
  input.addEventListener("change", function () { if (input.value) showDay(input.value); });
  showDay(input.value);
})();
