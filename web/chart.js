// The page's line charts (training in the page, the lab's training run):
// a frame with the value range and a caption, and lines drawn in it.

// Clears `canvas` and draws its frame for values from `low` to `high`;
// returns `line(points, color, width, dash)` for points [x from 0 to 1, value].
export function chart(canvas, low, high, caption) {
  const context = canvas.getContext('2d');
  const { width, height } = canvas;
  context.clearRect(0, 0, width, height);
  context.strokeStyle = '#ccd';
  context.strokeRect(30, 5, width - 35, height - 25);
  context.fillStyle = '#5b6475';
  context.font = '11px sans-serif';
  context.fillText(high.toFixed(2), 0, 12);
  context.fillText(low.toFixed(2), 0, height - 20);
  context.fillText(caption, width - 70, height - 6);
  return function line(points, color, lineWidth = 2, dash = []) {
    context.strokeStyle = color;
    context.lineWidth = lineWidth;
    context.setLineDash(dash);
    context.beginPath();
    points.forEach(([x, value], i) => {
      // Values off the scale (a diverging loss, NaN) are drawn at its top.
      const shown = Number.isFinite(value) ? Math.min(Math.max(value, low), high) : high;
      const at = [30 + x * (width - 35), 5 + (1 - (shown - low) / (high - low)) * (height - 25)];
      i === 0 ? context.moveTo(...at) : context.lineTo(...at);
    });
    context.stroke();
    context.setLineDash([]);
  };
}
