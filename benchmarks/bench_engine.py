"""Benchmarks of the engine (``make bench``), as ratios against a baseline run in the same process.

1. GD throughput, in seed-steps per second: the engine batched over 64 seeds (closed-form
   gradients, one tensor computation per step) against the loop a user would write
   (torch.nn.Linear layers without bias, autograd, torch.optim.SGD, one seed at a time):
   same data, widths, loss (logistic), step and float64, both on one thread.
   * toy set (n = 16, d = 2), widths 2-5-4-3-1;          target >= 100x
   * Gaussian set n = 200, d = 50, widths 50-50-50-50-1;  target >= 25x
   On a CUDA machine it also reports seed-steps/s at a batch of 131,072.
2. Gradient flow to ln(1/R) = 1000 on the toy set, 4 layers, exponential loss: wall time and
   field evaluations for one run and for 64 seeds, and the invariant drift
   max_k ||A_k(t) - A_k(0)||_2 / max_k ||W_k||_F^2.  Targets: <= 0.25 s and drift <= 1e-10
   for one run, <= 4 s for 64 seeds.

The last line printed is machine-readable:
``gd_speedup_toy=<x> gd_speedup_d50=<x> gf_seconds=<y> gf_seconds_64=<y> gf_drift=<z>``.
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("GDALIGN_PROGRESS", "0")

import torch  # noqa: E402

from gdalign.data import gaussian_separable, toy  # noqa: E402
from gdalign.dynamics import gradient_descent, gradient_flow  # noqa: E402
from gdalign.network import init_network, invariant_matrices  # noqa: E402

ETA = 0.05


def baseline_seed_steps_per_s(ds, widths, steps: int, seeds) -> float:
    """The loop a user would write: nn.Linear layers, autograd, SGD, one seed at a time."""
    Z = torch.as_tensor(ds.Z)

    def loop(seeds, steps):
        for seed in seeds:
            torch.manual_seed(seed)
            net = torch.nn.Sequential(*[torch.nn.Linear(widths[k], widths[k + 1], bias=False)
                                        for k in range(len(widths) - 1)]).double()
            opt = torch.optim.SGD(net.parameters(), lr=ETA)
            for _ in range(steps):
                opt.zero_grad()
                loss = torch.nn.functional.softplus(-net(Z).squeeze(1)).mean()  # logistic risk
                loss.backward()
                opt.step()

    loop([0], 20)  # warm-up: torch's lazy initialisation is not the user's loop
    t0 = time.perf_counter()
    loop(seeds, steps)
    return len(seeds) * steps / (time.perf_counter() - t0)


def engine_seed_steps_per_s(ds, widths, steps: int, batch: int, device: str = "cpu") -> float:
    W0 = init_network(widths, "small", seeds=range(batch), scale=0.3, data=ds, loss="logistic", device=device)
    gradient_descent(W0, ds, "logistic", 5, ETA, n_records=0)  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    gradient_descent(W0, ds, "logistic", steps, ETA, n_records=0)
    if device == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - t0)


def engine_gpu_seed_steps_per_s(ds, widths, steps: int, batch: int) -> float:  # noqa: D103
    """Seeds drawn on the GPU from one generator (per-member generators would dominate at 131k)."""
    g = torch.Generator(device="cuda").manual_seed(0)
    W0 = [0.3 * torch.randn(batch, widths[k + 1], widths[k], generator=g, device="cuda", dtype=torch.float64)
          for k in range(len(widths) - 1)]
    gradient_descent(W0, ds, "logistic", 5, ETA, n_records=0)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    gradient_descent(W0, ds, "logistic", steps, ETA, n_records=0)
    torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - t0)


def flow(ds, seeds) -> tuple[float, int, float]:
    W0 = init_network([2, 5, 4, 3, 1], "small", seeds=seeds, scale=0.5, data=ds, loss="exp")
    gradient_flow(W0, ds, "exp", target=10.0, n_records=2)  # warm-up
    t0 = time.perf_counter()
    run = gradient_flow(W0, ds, "exp", target=1000.0, n_records=2)
    wall = time.perf_counter() - t0
    drift = max(float((a - b).flatten(1).norm(dim=1).max()) for a, b in
                zip(invariant_matrices(run.W), invariant_matrices(W0)))  # Frobenius >= spectral: conservative
    scale = max(float((w * w).sum(dim=(1, 2)).max()) for w in run.W)
    return wall, run.meta["n_fev"], drift / scale


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=1000, help="GD steps per measurement")
    ap.add_argument("--baseline-seeds", type=int, default=4, help="seeds the baseline loop runs")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for both sides")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    toy_ds = toy()
    d50 = gaussian_separable(200, 50, seed=0)
    cases = {"toy": (toy_ds, [2, 5, 4, 3, 1]), "d50": (d50, [50, 50, 50, 50, 1])}
    speedups = {}
    for name, (ds, widths) in cases.items():
        base = baseline_seed_steps_per_s(ds, widths, args.steps, range(args.baseline_seeds))
        eng = engine_seed_steps_per_s(ds, widths, args.steps, 64)
        speedups[name] = eng / base
        print(f"GD {name:4s} widths {'-'.join(map(str, widths))}: baseline {base:10.0f} seed-steps/s, "
              f"engine (64 seeds) {eng:10.0f} seed-steps/s, speed-up {eng / base:6.1f}x", flush=True)
    if torch.cuda.is_available():
        # the same run on both devices: the engine is device-agnostic
        W0 = init_network([2, 5, 4, 3, 1], "small", seeds=range(8), scale=0.5, data=toy_ds, loss="logistic")
        cpu = gradient_descent(W0, toy_ds, "logistic", 200, "assumption5", n_records=0).W
        gpu = gradient_descent([w.cuda() for w in W0], toy_ds, "logistic", 200, "assumption5", n_records=0).W
        err = max(float((a - b.cpu()).abs().max()) for a, b in zip(cpu, gpu))
        fl = gradient_flow([w.cuda() for w in W0], toy_ds, "exp", target=100.0, n_records=3)
        print(f"GPU vs CPU, 200 Assumption-5 GD steps: max |W difference| {err:.1e}; "
              f"flow on the GPU reached ln(1/R) = {float(fl.final['neg_log_risk'].min()):.6f}")
        for name, (ds, widths) in cases.items():
            for batch in (8192, 131072):
                eng = engine_gpu_seed_steps_per_s(ds, widths, 20, batch)
                print(f"GD {name:4s} on {torch.cuda.get_device_name()}: {eng:,.0f} seed-steps/s at a batch of "
                      f"{batch:,}", flush=True)
    gf1, nfev1, drift1 = flow(toy_ds, [0])
    gf64, nfev64, drift64 = flow(toy_ds, range(64))
    print(f"GF toy, 4 layers, exp, to ln(1/R) = 1000: one run {gf1:.3f} s ({nfev1} field evaluations, "
          f"drift {drift1:.1e}); 64 seeds {gf64:.3f} s ({nfev64} evaluations, drift {drift64:.1e})")
    print(f"gd_speedup_toy={speedups['toy']:.1f} gd_speedup_d50={speedups['d50']:.1f} gf_seconds={gf1:.3f} "
          f"gf_seconds_64={gf64:.3f} gf_drift={max(drift1, drift64):.2e}")


if __name__ == "__main__":
    main()
