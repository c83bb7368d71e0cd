// The access level's weekly grid: drag over half-hour cells to paint or clear them; the day's text field (the form's
// own input, what is saved) follows, and typing in the field redraws the row. Ranges crossing midnight are typed
// ("22:00-02:00"); painting yields ranges within the day.
(function () {
  "use strict";
  const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
  const pad = (n) => String(n).padStart(2, "0");
  const hhmm = (slot) => `${pad(Math.floor(slot / 2))}:${slot % 2 ? "30" : "00"}`;
  const minutes = (t) => { const m = /^(\d{1,2}):(\d{2})$/.exec(t.trim()); return m ? (+m[1]) * 60 + (+m[2]) : null; };

  function parse(text) {  // "18:00-22:00, 23:00-01:00" -> [[start, end], ...] in minutes (bad parts skipped)
    return text.split(/[,;]/).map((p) => p.split("-")).filter((p) => p.length === 2)
      .map(([a, b]) => [minutes(a), minutes(b)]).filter(([a, b]) => a !== null && b !== null);
  }

  function redraw(grid) {
    const cells = {};
    DAYS.forEach((d) => { cells[d] = new Array(48).fill(""); });
    DAYS.forEach((d, i) => {
      const input = grid.querySelector(`input[data-day="${d}"]`);
      parse(input.value).forEach(([start, end]) => {
        const first = Math.floor(start / 30);
        if (end > start) { for (let s = first; s < Math.ceil(end / 30); s++) cells[d][s] = "on"; return; }
        for (let s = first; s < 48; s++) cells[d][s] = "on";
        const next = DAYS[(i + 1) % 7];
        for (let s = 0; s < Math.ceil(end / 30); s++) cells[next][s] = cells[next][s] || "carry";
      });
    });
    DAYS.forEach((d) => {
      grid.querySelectorAll(`[data-cells="${d}"] .wg-cell`).forEach((cell, s) => {
        cell.className = "wg-cell " + cells[d][s];
      });
    });
  }

  function write(grid, day) {  // the row's painted cells -> its text field (typed midnight-crossers kept while lit)
    const input = grid.querySelector(`input[data-day="${day}"]`);
    const on = [...grid.querySelectorAll(`[data-cells="${day}"] .wg-cell`)].map((c) => c.classList.contains("on"));
    const crossing = input.value.split(/[,;]/).map((p) => p.trim()).filter((p) => {
      const r = parse(p)[0];
      return r && r[1] <= r[0] && r[1] !== 0 && on.slice(Math.floor(r[0] / 30)).every(Boolean);
    });
    const taken = new Set();
    crossing.forEach((p) => { for (let s = Math.floor(parse(p)[0][0] / 30); s < 48; s++) taken.add(s); });
    const ranges = [];
    let start = null;
    for (let s = 0; s <= 48; s++) {
      const lit = s < 48 && on[s] && !taken.has(s);
      if (lit && start === null) start = s;
      if (!lit && start !== null) { ranges.push(`${hhmm(start)}-${s === 48 ? "24:00" : hhmm(s)}`); start = null; }
    }
    input.value = [...ranges, ...crossing].join(", ");
    redraw(grid);
  }

  function setUp(grid) {
    let painting = null, day = null;
    grid.addEventListener("pointerdown", (e) => {
      const cell = e.target.closest(".wg-cell");
      if (!cell) return;
      e.preventDefault();
      day = cell.parentElement.dataset.cells;
      painting = !cell.classList.contains("on");
      cell.classList.toggle("on", painting);
      cell.classList.remove("carry");
    });
    grid.addEventListener("pointermove", (e) => {  // elementFromPoint: a touch keeps its first target
      const under = document.elementFromPoint(e.clientX, e.clientY);
      const cell = under && under.closest(".wg-cell");
      if (painting === null || !cell || cell.parentElement.dataset.cells !== day) return;
      cell.classList.toggle("on", painting);
    });
    document.addEventListener("pointerup", () => {
      if (painting !== null) write(grid, day);
      painting = null;
    });
    grid.querySelectorAll("input[data-day]").forEach((input) => input.addEventListener("input", () => redraw(grid)));
  }

  document.addEventListener("DOMContentLoaded", () => document.querySelectorAll("[data-weekgrid]").forEach(setUp));
})();
