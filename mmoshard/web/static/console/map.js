// The live map: one space's terrain, portals, players and NPCs on a canvas,
// seen from above (x to the right, z down), and the chart of tick times.

const COLORS = { p: "#6fd08c", n: "#e0675a", dead: "#666666", blocked: "#3a4250",
                 portal: "#7b5fc9", border: "#2c3542", selected: "#ffffff", text: "#d8dee9" };
export const SERIES = ["#5fb3f0", "#f0c05f", "#6fd08c", "#e0675a", "#c792ea", "#89ddff",
                       "#ffcb6b", "#ff9cac"];

export class SpaceMap {
  constructor(canvas, onPick) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.detail = null;
    this.selected = null;  // an entity id
    this.onPick = onPick;
    canvas.addEventListener("click", (event) => this.click(event));
  }

  // Metres to pixels: the whole space fits the canvas, aspect kept.
  scale() {
    const d = this.detail;
    return Math.min(this.canvas.width / d.width, this.canvas.height / d.depth);
  }

  draw(detail) {
    this.detail = detail;
    const ctx = this.ctx;
    const { width, height } = this.canvas;
    ctx.clearRect(0, 0, width, height);
    if (!detail) {
      ctx.fillStyle = COLORS.text;
      ctx.fillText("no space selected", 10, 20);
      return;
    }
    const k = this.scale();
    ctx.strokeStyle = COLORS.border;
    ctx.strokeRect(0.5, 0.5, detail.width * k - 1, detail.depth * k - 1);
    ctx.fillStyle = COLORS.blocked;
    for (const [x0, z0, x1, z1] of detail.blocked) {
      ctx.fillRect(x0 * k, z0 * k, (x1 - x0) * k, (z1 - z0) * k);
    }
    ctx.font = "11px system-ui, sans-serif";
    for (const [x0, z0, x1, z1, where] of detail.portals) {
      ctx.fillStyle = COLORS.portal;
      ctx.fillRect(x0 * k, z0 * k, Math.max(2, (x1 - x0) * k), Math.max(2, (z1 - z0) * k));
      ctx.fillStyle = COLORS.text;
      const labelWidth = ctx.measureText(where).width;
      const lx = Math.max(2, Math.min(x0 * k + 2, detail.width * k - labelWidth - 2));
      ctx.fillText(where, lx, z0 * k > 14 ? z0 * k - 3 : z1 * k + 12);
    }
    // NPCs first: players stay visible on top of a pack.
    const ordered = [...detail.entities].sort((a, b) => (a.kind === "p") - (b.kind === "p"));
    for (const e of ordered) {
      const player = e.kind === "p";
      ctx.fillStyle = e.dead ? COLORS.dead : COLORS[e.kind] || COLORS.n;
      ctx.beginPath();
      ctx.arc(e.x * k, e.z * k, player ? 4 : 3, 0, Math.PI * 2);
      ctx.fill();
      if (e.id === this.selected) {
        ctx.strokeStyle = COLORS.selected;
        ctx.beginPath();
        ctx.arc(e.x * k, e.z * k, 8, 0, Math.PI * 2);
        ctx.stroke();
      }
      if (player) {
        ctx.fillStyle = COLORS.text;
        const nameWidth = ctx.measureText(e.name).width;
        const nx = e.x * k + 6 + nameWidth > detail.width * k ? e.x * k - 6 - nameWidth : e.x * k + 6;
        ctx.fillText(e.name, nx, e.z * k + 4);
      }
    }
  }

  click(event) {
    const d = this.detail;
    if (!d) {
      return;
    }
    const rect = this.canvas.getBoundingClientRect();
    const k = this.scale() * rect.width / this.canvas.width;
    const x = (event.clientX - rect.left) / k;
    const z = (event.clientY - rect.top) / k;
    let best = null;
    let bestDistance = 12 / k;  // within 12 pixels
    for (const e of d.entities) {
      const distance = Math.hypot(e.x - x, e.z - z);
      if (distance < bestDistance) {
        best = e;
        bestDistance = distance;
      }
    }
    if (best) {
      this.onPick(best);
    }
  }
}

// Tick times per zone label over the last minute: one line each.
export class TickChart {
  constructor(canvas, legend, keep = 150) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.legend = legend;
    this.keep = keep;
    this.series = new Map();  // label -> [[t, ms], ...]
  }

  add(now, label, ms) {
    let points = this.series.get(label);
    if (!points) {
      points = [];
      this.series.set(label, points);
    }
    points.push([now, ms]);
    if (points.length > this.keep) {
      points.splice(0, points.length - this.keep);
    }
  }

  draw() {
    const ctx = this.ctx;
    const { width, height } = this.canvas;
    ctx.clearRect(0, 0, width, height);
    let t0 = Infinity;
    let t1 = -Infinity;
    let top = 1;
    for (const points of this.series.values()) {
      for (const [t, ms] of points) {
        t0 = Math.min(t0, t);
        t1 = Math.max(t1, t);
        top = Math.max(top, ms);
      }
    }
    top = Math.ceil(top * 1.2);
    ctx.strokeStyle = "#2c3542";
    ctx.fillStyle = "#7d8896";
    ctx.font = "10px system-ui, sans-serif";
    for (const level of [0, top / 2, top]) {
      const y = height - 14 - (level / top) * (height - 24);
      ctx.beginPath();
      ctx.moveTo(30, y);
      ctx.lineTo(width, y);
      ctx.stroke();
      ctx.fillText(level.toFixed(1), 2, y + 3);
    }
    const span = Math.max(1, t1 - t0);
    this.legend.replaceChildren();
    let i = 0;
    for (const [label, points] of [...this.series.entries()].sort()) {
      const color = SERIES[i % SERIES.length];
      ctx.strokeStyle = color;
      ctx.beginPath();
      points.forEach(([t, ms], j) => {
        const x = 30 + ((t - t0) / span) * (width - 34);
        const y = height - 14 - (ms / top) * (height - 24);
        if (j === 0) {
          ctx.moveTo(x, y);
        } else {
          ctx.lineTo(x, y);
        }
      });
      ctx.stroke();
      const item = document.createElement("span");
      item.className = "item";
      const key = document.createElement("span");
      key.className = `key c${i % SERIES.length}`;
      item.append(key, `${label} ${points[points.length - 1][1].toFixed(2)} ms`);
      this.legend.append(item);
      i += 1;
    }
  }
}
