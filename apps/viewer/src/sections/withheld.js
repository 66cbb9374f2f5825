// When the server withheld data (no legitimate relationship, restricted content), say so
// plainly and offer the routes the user's role allows: claim a relationship with a reason, or
// break glass with a reason and a warning that it is audited.

import { h, p } from '../dom.js';

/** The notice, calling `choose({ kind, reason })` when the user picks a route. */
export function withheldNotice(withheld, choose) {
  const routes = withheld.routes ?? [];
  const headline = withheld.whole
    ? 'You cannot see this record yet'
    : 'Some of this record is hidden from you';
  return h('div', { class: 'nhsuk-notification-banner', role: 'region', 'aria-labelledby': 'withheld-title', id: 'withheld' },
    h('div', { class: 'nhsuk-notification-banner__header' },
      h('h2', { class: 'nhsuk-notification-banner__title', id: 'withheld-title' }, 'Information withheld')),
    h('div', { class: 'nhsuk-notification-banner__content' },
      h('p', { class: 'nhsuk-notification-banner__heading' }, headline),
      p(withheld.whole
        ? 'Your organisation has no recorded legitimate relationship with this person, or their record is restricted.'
        : 'Some information was withheld because your organisation has no recorded legitimate relationship with this person, or it is restricted.'),
      routes.includes('relationship-claim') ? route('claim', 'Claim a legitimate relationship',
        'Do this if you are caring for this person now (for example they are on your list today). Your claim and reason are recorded and reviewed, and last 30 days.',
        'Claim relationship and show the record', 'nhsuk-button', (reason) => choose({ kind: 'relationship-claim', reason })) : null,
      routes.includes('break-glass') ? route('break-glass', 'Break glass (emergency access)',
        'Only in an emergency, when the person may come to harm without it. Your access and your reason are audited and reviewed by the privacy officer.',
        'Break glass and show the record', 'nhsuk-button nhsuk-button--warning', (reason) => choose({ kind: 'break-glass', reason }), true) : null,
      routes.length ? null : p('Your role has no way to see this information. Ask the person’s care team.')));
}

function route(id, title, hint, button, buttonClass, act, warning = false) {
  const input = h('textarea', { class: 'nhsuk-textarea', id: `${id}-reason`, name: 'reason', rows: 2, 'aria-describedby': `${id}-hint`, required: true, maxlength: 500 });
  const error = h('p', { class: 'nhsuk-error-message', id: `${id}-error`, hidden: true }, h('span', { class: 'nhsuk-u-visually-hidden' }, 'Error: '), 'Enter a reason');
  const form = h('form', { id: `${id}-form`, novalidate: true },
    h('div', { class: 'nhsuk-form-group' },
      h('h3', { class: 'nhsuk-heading-s' }, title),
      warning ? h('div', { class: 'nhsuk-card nhsuk-card--warning' }, h('div', { class: 'nhsuk-card__content' },
        h('h4', { class: 'nhsuk-card__heading' }, 'This is audited'),
        h('p', { class: 'nhsuk-card__description', id: `${id}-hint` }, hint))) : h('div', { class: 'nhsuk-hint', id: `${id}-hint` }, hint),
      h('label', { class: 'nhsuk-label', for: `${id}-reason` }, 'Your reason'),
      error,
      input),
    h('button', { class: buttonClass, type: 'submit', id: `${id}-submit` }, button));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const reason = input.value.trim();
    error.hidden = Boolean(reason);
    input.classList.toggle('nhsuk-textarea--error', !reason);
    if (!reason) {
      input.setAttribute('aria-describedby', `${id}-hint ${id}-error`);
      input.focus();
      return;
    }
    act(reason);
  });
  return form;
}
