// Sorting and filtering of the leaderboard tables. The pages are complete without it: this only reorders
// or hides rows. A header of a table marked data-sortable becomes a button; a click sorts the body rows by
// that column (a cell's data-sort value, else its text), first in the header's data-order (or the table's),
// then the other way; empty cells stay last. Filter boxes (hidden without JavaScript) hide body rows whose
// text does not contain what is typed.
(function () {
  "use strict";

  function sortKey(cell) {
    return cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
  }

  function compare(a, b, numeric) {
    if (a === "" || b === "") {
      return a === b ? 0 : (a === "" ? 1 : -1);
    }
    if (numeric) {
      return parseFloat(a) - parseFloat(b);
    }
    return a.localeCompare(b, undefined, { numeric: true, sensitivity: "base" });
  }

  function sortBy(table, index, header) {
    var body = table.tBodies[0];
    var first = header.getAttribute("data-order") || table.getAttribute("data-order") || "ascending";
    var current = header.getAttribute("aria-sort");
    var order = current === first ? (first === "ascending" ? "descending" : "ascending") : first;
    var numeric = header.getAttribute("data-type") === "number";
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (r1, r2) {
      var a = sortKey(r1.cells[index]);
      var b = sortKey(r2.cells[index]);
      if (a === "" || b === "") {
        return compare(a, b, numeric);  // empty last whatever the order
      }
      var c = compare(a, b, numeric);
      return order === "ascending" ? c : -c;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(header.parentNode.cells, function (th) { th.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", order);
  }

  function makeSortable(table) {
    if (!table.tHead || !table.tBodies.length) {
      return;
    }
    var headers = table.tHead.rows[table.tHead.rows.length - 1].cells;
    Array.prototype.forEach.call(headers, function (th, index) {
      var button = document.createElement("button");
      button.type = "button";
      while (th.firstChild) {
        button.appendChild(th.firstChild);
      }
      th.appendChild(button);
      button.addEventListener("click", function () { sortBy(table, index, th); });
    });
    table.classList.add("js-sortable");
  }

  function makeFilter(input) {
    var table = document.getElementById(input.getAttribute("data-filter"));
    if (!table) {
      return;
    }
    input.closest(".filter").hidden = false;
    input.addEventListener("input", function () {
      var wanted = input.value.trim().toLowerCase();
      Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
        row.hidden = wanted !== "" && row.textContent.toLowerCase().indexOf(wanted) === -1;
      });
    });
  }

  document.querySelectorAll("table[data-sortable]").forEach(makeSortable);
  document.querySelectorAll("input[data-filter]").forEach(makeFilter);
}());
