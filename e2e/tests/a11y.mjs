// The automated accessibility check: axe-core (from npm) run inside the real
// page, failing on serious and critical violations. Injected through
// `page.evaluate`, which a Content-Security-Policy does not apply to.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

/** Runs axe on the current page; fails listing each serious violation. */
export async function assertAccessible(page, what) {
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) await page.evaluate(AXE);
  const found = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ['violations'] });
    return result.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.slice(0, 3)
        .map((n) => `${n.target.join(' ')} [${(n.any[0] || n.all[0] || n.none[0] || {}).message || ''}]`).join(' | ')}`);
  });
  if (process.env.A11Y_SOFT) {
    if (found.length) console.log(`A11Y ${what}: ${found.join('\n  ')}`);
    return;
  }
  assert.deepEqual(found, [], `accessibility of ${what}`);
}
