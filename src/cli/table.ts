import Table from 'cli-table3';

export type TableStyle = 'table' | 'plain';

export interface TableOptions {
  style: TableStyle;
  /** Plain style only: the header row (boxed tables always have one). */
  headers: boolean;
}

function plainCell(value: unknown): string {
  // One row per line, columns split by tabs: a cell must hold neither.
  return String(value ?? '').replace(/[\t\r\n]+/g, ' ');
}

/**
 * Every table a command prints: boxed for people at a terminal; tab-separated rows without any box
 * drawing for grep, awk and cut (`-o plain`, and whenever stdout is not a terminal).
 */
export function renderTable(head: string[], rows: unknown[][], options: TableOptions): string {
  if (options.style === 'plain') {
    const lines = rows.map((row) => row.map(plainCell).join('\t'));
    if (options.headers) lines.unshift(head.join('\t'));
    return lines.join('\n');
  }
  const table = new Table({ head, style: { head: [], border: [] } });
  for (const row of rows)
    table.push(row.map((cell) => (cell === null || cell === undefined ? '' : String(cell))));
  return table.toString();
}
