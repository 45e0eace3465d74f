/** Reads a dot path; a key that itself contains dots (e.g. "@odata.nextLink") is matched whole first. */
export function readPath(value: unknown, path: string): unknown {
  if (path === '') return value;
  if (value === null || typeof value !== 'object') return undefined;
  const obj = value as Record<string, unknown>;
  if (Object.hasOwn(obj, path)) return obj[path];
  for (let dot = path.indexOf('.'); dot !== -1; dot = path.indexOf('.', dot + 1)) {
    const head = path.slice(0, dot);
    if (Object.hasOwn(obj, head)) {
      const found = readPath(obj[head], path.slice(dot + 1));
      if (found !== undefined) return found;
    }
  }
  return undefined;
}
