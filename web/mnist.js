// MNIST's files as `octconv serve` offers them at data/, for training in the
// page and in the lab.

// The bytes of data/`name`, or an error saying how to serve them.
export async function fetchMnistFile(name) {
  const response = await fetch(`data/${name}`);
  if (!response.ok) throw new Error(`data/${name}: ${response.status}; serve the page with \`octconv serve --data DIR\``);
  return new Uint8Array(await response.arrayBuffer());
}
