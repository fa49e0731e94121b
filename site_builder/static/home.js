/* Home: the question of the day for the visitor's own date (the page was built on some other day). */
(function () {
  "use strict";
  var data = window.KB_DAILY;
  var dateEl = document.getElementById("daily-date");
  if (!data || !dateEl) return;
  function iso(d) {
    return d.getFullYear() + "-" + String(d.getMonth() + 1).padStart(2, "0") + "-" + String(d.getDate()).padStart(2, "0");
  }
  var today = iso(new Date());
  if (dateEl.textContent === today) return;
  var start = new Date(data.start + "T00:00:00");
  var offset = Math.round((new Date(today + "T00:00:00") - start) / 86400000);
  var idx = offset >= 0 && offset < data.days.length ? data.days[offset] : -1;
  var box = document.getElementById("daily");
  dateEl.textContent = today;
  var qEl = box.querySelector(".daily-q");
  var meta = box.querySelector(".daily-meta");
  if (idx < 0) { qEl.textContent = "今天没有安排题目。"; if (meta) meta.hidden = true; return; }
  var q = data.qs[idx];
  qEl.textContent = "";
  var a = document.createElement("a");
  a.id = "daily-link";
  a.href = q[1] + ".html#q-" + q[0];
  a.textContent = q[3];
  qEl.appendChild(a);
  var entry = document.getElementById("daily-entry");
  if (entry) {
    entry.textContent = "来自「";
    var e = document.createElement("a");
    e.href = q[1] + ".html";
    e.textContent = q[2];
    entry.appendChild(e);
    entry.appendChild(document.createTextNode("」"));
  }
  if (meta) meta.hidden = false;
})();
