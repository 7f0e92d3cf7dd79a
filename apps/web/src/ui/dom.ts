/** Plain DOM helpers. Text goes in through textContent only: bodies and names are untrusted. */

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`#${id} is missing from index.html`);
  return element as T;
}

export function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Record<string, string> = {},
  text?: string,
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

const SCREENS = ['probe-screen', 'trust-screen', 'refused-screen', 'login-screen', 'chat-screen'];

/** Shows one screen and hides the others. */
export function showScreen(id: string): void {
  for (const screen of SCREENS) byId(screen).hidden = screen !== id;
}
