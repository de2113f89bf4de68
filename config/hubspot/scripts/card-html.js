// Turns a card rendered with @hubspot/ui-extensions/testing (createRenderer) into static HTML.
// UI extension components do not render to the DOM (HubSpot draws them), so each component the card uses
// is mapped to simple HTML styled after HubSpot's Canvas design system (colours from Canvas' palette).
// An unmapped component is an error, so a new component in the card cannot silently vanish from the picture.

const GAP = { flush: 0, 'extra-small': 4, xs: 4, small: 8, sm: 8, medium: 16, md: 16, large: 24, lg: 24, 'extra-large': 32, xl: 32 };

// Canvas tag colours: [background, border, text].
const TAG = {
  default: ['#eaf0f6', '#cbd6e2', '#33475b'],
  success: ['#e5f8f6', '#00bda5', '#00a38d'],
  warning: ['#fef8f0', '#f5c26b', '#b36b00'],
  error: ['#fde8e9', '#f2545b', '#d94c53'],
  info: ['#e5f5f8', '#7fd1de', '#0091ae'],
};

// Canvas alert colours: [background, border].
const ALERT = {
  info: ['#e5f5f8', '#7fd1de'],
  tip: ['#e5f5f8', '#7fd1de'],
  success: ['#e5f8f6', '#7fded2'],
  warning: ['#fef8f0', '#fae0b5'],
  error: ['#fde8e9', '#f8a9ad'],
  danger: ['#fde8e9', '#f8a9ad'],
};

export function escapeHtml(text) {
  return String(text)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

function children(node) {
  return (node.childNodes ?? []).map(toHtml).join('');
}

const COMPONENTS = {
  Flex(node) {
    const p = node.props;
    const dir = p.direction === 'row' ? 'row' : 'column';
    const gap = GAP[p.gap ?? 'flush'] ?? 0;
    const align = p.align ? `align-items:${p.align === 'start' ? 'flex-start' : p.align === 'end' ? 'flex-end' : p.align};` : '';
    return `<div class="flex" style="flex-direction:${dir};gap:${gap}px;${align}">${children(node)}</div>`;
  },
  Tag(node) {
    const [bg, border, color] = TAG[node.props.variant ?? 'default'] ?? TAG.default;
    return `<span class="tag" style="background:${bg};border-color:${border};color:${color}">${children(node)}</span>`;
  },
  Text(node) {
    const p = node.props;
    const cls = ['text'];
    if (p.variant === 'microcopy') cls.push('micro');
    if (p.format?.fontWeight === 'demibold') cls.push('demibold');
    if (p.format?.fontWeight === 'bold') cls.push('bold');
    if (p.format?.italic) cls.push('italic');
    const tag = p.inline ? 'span' : 'p';
    return `<${tag} class="${cls.join(' ')}">${children(node)}</${tag}>`;
  },
  Heading(node) {
    return `<h4 class="heading">${children(node)}</h4>`;
  },
  List(node) {
    const ordered = String(node.props.variant ?? '').startsWith('ordered');
    const styled = String(node.props.variant ?? '').endsWith('styled');
    const tag = ordered ? 'ol' : 'ul';
    const items = (node.childNodes ?? []).map((c) => `<li>${toHtml(c)}</li>`).join('');
    return `<${tag} class="list${styled ? ' styled' : ''}">${items}</${tag}>`;
  },
  Divider() {
    return '<hr class="divider">';
  },
  Alert(node) {
    const [bg, border] = ALERT[node.props.variant ?? 'info'] ?? ALERT.info;
    return `<div class="alert" style="background:${bg};border-color:${border}"><p class="alert-title">${escapeHtml(node.props.title)}</p><div class="alert-body">${children(node)}</div></div>`;
  },
  DescriptionList(node) {
    return `<dl class="dlist ${node.props.direction === 'row' ? 'row' : 'column'}">${children(node)}</dl>`;
  },
  DescriptionListItem(node) {
    return `<div class="ditem"><dt>${escapeHtml(node.props.label)}</dt><dd>${children(node)}</dd></div>`;
  },
  LoadingSpinner(node) {
    return `<div class="spinner"><span class="ring"></span>${node.props.showLabel ? escapeHtml(node.props.label) : ''}</div>`;
  },
  ErrorState(node) {
    return `<div class="errorstate"><p class="heading">${escapeHtml(node.props.title ?? '')}</p>${children(node)}</div>`;
  },
};

/** HTML for one rendered node (root, element or text). */
export function toHtml(node) {
  if (node.nodeType === 'text') {
    return escapeHtml(node.text);
  }
  if (node.nodeType === 'root' || node.nodeType === 'fragment') {
    return children(node);
  }
  const render = COMPONENTS[node.name];
  if (!render) {
    throw new Error(`card-html: no HTML mapping for the component ${node.name}; add one to scripts/card-html.js`);
  }
  return render(node);
}

const CSS = `
* { box-sizing: border-box; }
body { margin: 0; background: #f5f8fa; color: #33475b; font-family: "Lexend Deca", "Avenir Next", Avenir, "Helvetica Neue", "Liberation Sans", Arial, sans-serif; font-size: 14px; line-height: 1.5; -webkit-font-smoothing: antialiased; }
.page { display: flex; gap: 24px; padding: 24px; align-items: flex-start; }
.record { width: 560px; }
.record-title { font-size: 12px; color: #516f90; margin: 0 0 8px 2px; }
.record-title b { color: #33475b; font-size: 14px; }
.card { background: #fff; border: 1px solid #dfe3eb; border-radius: 4px; }
.card-head { display: flex; align-items: center; gap: 8px; padding: 14px 20px; border-bottom: 1px solid #dfe3eb; font-weight: 600; font-size: 14px; }
.card-head .caret { color: #7c98b6; font-size: 10px; }
.card-head .app { margin-left: auto; font-weight: 400; font-size: 12px; color: #7c98b6; }
.card-body { padding: 16px 20px 20px; }
.flex { display: flex; }
.tag { display: inline-block; border: 1px solid; border-radius: 3px; padding: 1px 8px; font-size: 12px; font-weight: 600; text-transform: uppercase; letter-spacing: .02em; white-space: nowrap; }
.text { margin: 0; }
.micro { font-size: 12px; color: #516f90; }
.demibold { font-weight: 600; }
.bold { font-weight: 700; }
.italic { font-style: italic; }
.heading { margin: 0; font-size: 14px; font-weight: 700; }
.list { margin: 0; padding-left: 20px; }
.list.styled li { margin: 0 0 6px; }
.list.styled li::marker { color: #7c98b6; }
.divider { border: 0; border-top: 1px solid #dfe3eb; margin: 4px 0; width: 100%; }
.alert { border: 1px solid; border-radius: 3px; padding: 10px 14px; }
.alert-title { margin: 0 0 2px; font-weight: 700; }
.dlist { margin: 0; display: grid; gap: 8px 24px; }
.dlist.row { grid-template-columns: 1fr 1fr; }
.ditem dt { font-size: 12px; color: #516f90; text-transform: uppercase; letter-spacing: .03em; }
.ditem dd { margin: 0; }
.ditem:first-child { grid-column: 1 / -1; }
.spinner { display: flex; gap: 8px; align-items: center; color: #516f90; }
.ring { width: 14px; height: 14px; border: 2px solid #cbd6e2; border-top-color: #ff7a59; border-radius: 50%; display: inline-block; }
.errorstate { text-align: center; padding: 12px; }
`;

/**
 * A page showing each scenario as a HubSpot deal-record card.
 * scenarios: [{ dealName, caption, html }]
 */
export function page(title, scenarios) {
  const cards = scenarios
    .map(
      (s) => `<section class="record">
  <p class="record-title"><b>${escapeHtml(s.dealName)}</b> · ${escapeHtml(s.caption)}</p>
  <div class="card">
    <div class="card-head"><span class="caret">▼</span>${escapeHtml(title)}<span class="app">bant-sync</span></div>
    <div class="card-body">${s.html}</div>
  </div>
</section>`,
    )
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title><style>${CSS}</style></head>
<body><main class="page">
${cards}
</main></body></html>
`;
}
