// brats-ssl review: click a column header to sort its table (numbers as numbers, "-" last).
for (const table of document.querySelectorAll("table.sortable")) {
  const headers = [...table.tHead.rows[0].cells];
  headers.forEach((th, column) => th.addEventListener("click", () => {
    const order = th.dataset.order === "asc" ? "desc" : "asc";
    headers.forEach((other) => delete other.dataset.order);
    th.dataset.order = order;
    const value = (row) => {
      const text = row.cells[column].textContent.trim();
      const number = Number(text);
      return text === "-" || text === "" ? null : Number.isNaN(number) ? text : number;
    };
    const rows = [...table.tBodies[0].rows];
    rows.sort((a, b) => {
      const x = value(a), y = value(b);
      if (x === null || y === null) return (x === null) - (y === null);
      const cmp = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y));
      return order === "asc" ? cmp : -cmp;
    });
    table.tBodies[0].append(...rows);
  }));
}
