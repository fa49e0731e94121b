/* Search over window.KB_SEARCH (static/data/search.js, written by the build). No server.
 *
 * The build segmented every text with the API's analyzer; here a query is segmented by
 * longest match against the index's own terms (and the stopwords, which are then dropped),
 * ASCII words are kept whole and also split on - and . as the index does. Each query token
 * matches its exact term and terms it is a prefix of (weaker), weighted by idf; documents
 * matching more tokens rank first, then by score. A query equal to an entry's id, title or
 * alias puts that entry first.
 */
(function () {
  "use strict";
  var CJK = /[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]/;
  var RUN = /[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+|[\p{L}\p{N}_]+(?:[-.'+#][\p{L}\p{N}_]+)*[+#]*/gu;
  var PART = /[\p{L}\p{N}]+/gu;
  var MAX_EXPAND = 60;
  var ix = null;

  function norm(s) {
    return String(s).normalize("NFKC").toLowerCase().replace(/\s+/g, " ").trim();
  }

  /* The data lists documents with their terms; invert it once: term -> [doc, weight, ...]. */
  function prepare() {
    if (ix) return ix;
    var data = window.KB_SEARCH;
    if (!data) return null;
    var terms = new Map(), names = new Map();
    var docs = data.docs;
    for (var d = 0; d < docs.length; d++) {
      var w = docs[d][7];
      for (var t in w) {
        var p = terms.get(t);
        if (p === undefined) { p = []; terms.set(t, p); }
        p.push(d, w[t]);
      }
      var ns = docs[d][6];
      for (var i = 0; i < ns.length; i++) {
        var list = names.get(ns[i]);
        if (list === undefined) { list = []; names.set(ns[i], list); }
        list.push(d);
      }
    }
    var keys = Array.from(terms.keys()).sort();
    var maxLen = 2;
    for (var k = 0; k < keys.length; k++) {
      if (CJK.test(keys[k]) && keys[k].length > maxLen) maxLen = Math.min(keys[k].length, 16);
    }
    ix = { data: data, terms: terms, names: names, keys: keys, stop: new Set(data.stop), maxLen: maxLen, n: docs.length };
    return ix;
  }

  function known(word) {
    return ix.terms.has(word) || ix.stop.has(word);
  }

  function tokenize(query) {
    var out = [];
    var seen = new Set();
    function add(t, kind) {
      if (!t || seen.has(t) || ix.stop.has(t)) return;
      seen.add(t);
      out.push({ t: t, kind: kind });
    }
    var q = norm(query);
    var m;
    RUN.lastIndex = 0;
    while ((m = RUN.exec(q)) !== null) {
      var w = m[0];
      if (CJK.test(w[0])) {
        var i = 0;
        while (i < w.length) {
          var found = null;
          for (var L = Math.min(ix.maxLen, w.length - i); L >= 2; L--) {
            var s = w.substr(i, L);
            if (known(s)) { found = s; break; }
          }
          if (found) { add(found, "word"); i += found.length; }
          else { add(w[i], "char"); i += 1; }
        }
      } else {
        add(w, "word");
        var parts = w.match(PART) || [];
        if (parts.length > 1) parts.forEach(function (p) { add(p, "part"); });
      }
    }
    return out;
  }

  function lowerBound(keys, t) {
    var lo = 0, hi = keys.length;
    while (lo < hi) {
      var mid = (lo + hi) >> 1;
      if (keys[mid] < t) lo = mid + 1; else hi = mid;
    }
    return lo;
  }

  function expand(tok) {
    var terms = [];
    var t = tok.t;
    if (ix.terms.has(t)) terms.push([t, 1]);
    var prefixOk = CJK.test(t) ? true : t.length >= 2;
    if (!prefixOk) return terms;
    var limit = tok.kind === "char" ? 20 : MAX_EXPAND;
    var i = lowerBound(ix.keys, t);
    var n = 0;
    for (; i < ix.keys.length && n < limit; i++) {
      var k = ix.keys[i];
      if (k.lastIndexOf(t, 0) !== 0) break;
      if (k === t) continue;
      terms.push([k, 0.35 + 0.4 * (t.length / k.length)]);
      n++;
    }
    return terms;
  }

  /* Results: [{kind, id, title, url, category, sub, score}], best first. */
  function search(query, limit) {
    if (!prepare()) return [];
    var toks = tokenize(query);
    var acc = new Map();
    var required = 0;
    toks.forEach(function (tok) {
      var isReq = tok.kind === "word";
      if (isReq) required++;
      var best = new Map();
      expand(tok).forEach(function (pair) {
        var post = ix.terms.get(pair[0]);
        var idf = Math.log(1 + ix.n / (post.length / 2));
        for (var j = 0; j < post.length; j += 2) {
          var v = post[j + 1] * pair[1] * idf;
          var prev = best.get(post[j]);
          if (prev === undefined || v > prev) best.set(post[j], v);
        }
      });
      best.forEach(function (v, doc) {
        var a = acc.get(doc);
        if (!a) { a = { s: 0, hits: 0 }; acc.set(doc, a); }
        a.s += v;
        if (isReq) a.hits++;
      });
    });
    var whole = norm(query);
    (ix.names.get(whole) || []).forEach(function (doc) {
      var a = acc.get(doc);
      if (!a) { a = { s: 0, hits: required }; acc.set(doc, a); }
      a.s += 100000;
      a.hits = Math.max(a.hits, required);
    });
    var out = [];
    acc.forEach(function (a, doc) {
      var d = ix.data.docs[doc];
      out.push({ kind: d[0], id: d[1], title: d[2], url: d[3], category: d[4], sub: d[5],
                 categoryName: ix.data.cats[d[4]] || d[4], score: a.s * (d[0] === "e" ? 1.25 : 1), hits: a.hits });
    });
    out.sort(function (x, y) { return (y.hits - x.hits) || (y.score - x.score) || (x.id < y.id ? -1 : 1); });
    return out.slice(0, limit || 50);
  }

  /* Terms to highlight in results. */
  function highlightTerms(query) {
    if (!prepare()) return [];
    return tokenize(query).filter(function (t) { return t.kind !== "char" || t.t.length > 1; }).map(function (t) { return t.t; });
  }

  /* Append `text` to `el`, wrapping occurrences of `terms` in <mark> (no innerHTML). */
  function appendHighlighted(el, text, terms) {
    var low = text.toLowerCase();
    var i = 0;
    while (i < text.length) {
      var hit = -1, len = 0;
      terms.forEach(function (t) {
        var p = low.indexOf(t, i);
        if (p !== -1 && (hit === -1 || p < hit || (p === hit && t.length > len))) { hit = p; len = t.length; }
      });
      if (hit === -1) { el.appendChild(document.createTextNode(text.slice(i))); break; }
      if (hit > i) el.appendChild(document.createTextNode(text.slice(i, hit)));
      var mk = document.createElement("mark");
      mk.textContent = text.slice(hit, hit + len);
      el.appendChild(mk);
      i = hit + len;
    }
  }

  window.KBSearch = { search: search, tokenize: function (q) { return prepare() ? tokenize(q) : []; },
                      highlightTerms: highlightTerms, appendHighlighted: appendHighlighted, ready: function () { return !!prepare(); } };
})();
