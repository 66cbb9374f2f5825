// Building the page from data without ever parsing data as HTML: every value a server sent
// becomes a text node, so nothing in a record can run as script in the viewer.

/** An element with attributes (`class`, `on<event>` handlers, others as attributes) and children. */
export function h(tag, attrs, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

/** An SVG element, as `h`. */
export function s(tag, attrs, ...children) {
  return fill(document.createElementNS('http://www.w3.org/2000/svg', tag), attrs, children);
}

function fill(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.setAttribute('class', v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false || c === '') continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/** Replaces the children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  return fill(el, null, children);
}

/** A section with a heading (`h2`) labelling it for assistive technology. */
export function section(id, title, ...children) {
  const headingId = `${id}-heading`;
  return h('section', { id, class: 'viewer-section', 'aria-labelledby': headingId },
    h('h2', { id: headingId }, title), ...children);
}

/** An NHS summary list of [key, value] rows; rows without a value are left out. */
export function summaryList(rows, attrs) {
  return h('dl', { class: 'nhsuk-summary-list', ...attrs },
    rows.filter(([, v]) => v != null && v !== '' && !(Array.isArray(v) && !v.length)).map(([k, v]) =>
      h('div', { class: 'nhsuk-summary-list__row' },
        h('dt', { class: 'nhsuk-summary-list__key' }, k),
        h('dd', { class: 'nhsuk-summary-list__value' }, v))));
}

/** An NHS table with a caption, header cells and rows of cells; scrolls sideways on a phone. */
export function table(caption, head, rows, attrs) {
  return h('div', { class: 'viewer-table-wrap', tabindex: '0', role: 'region', 'aria-label': caption },
    h('table', { class: 'nhsuk-table', ...attrs },
      h('caption', { class: 'nhsuk-table__caption nhsuk-u-visually-hidden' }, caption),
      h('thead', { class: 'nhsuk-table__head' },
        h('tr', { class: 'nhsuk-table__row' }, head.map((t) => h('th', { class: 'nhsuk-table__header', scope: 'col' }, t)))),
      h('tbody', { class: 'nhsuk-table__body' },
        rows.map((cells) => h('tr', { class: 'nhsuk-table__row' },
          cells.map((c) => h('td', { class: 'nhsuk-table__cell' }, c)))))));
}

/** A paragraph of body text. */
export const p = (...children) => h('p', { class: 'nhsuk-body' }, ...children);

/** An NHS tag (`colour`: red, orange, grey, …). */
export const tag = (text, colour) => h('strong', { class: `nhsuk-tag${colour ? ` nhsuk-tag--${colour}` : ''}` }, text);
