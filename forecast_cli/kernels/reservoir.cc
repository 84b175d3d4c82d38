// The echo-state reservoir's recurrence, s' = (1 - a) s + a tanh(W s + W_in x + b), for many sequences at
// once, as an XLA FFI custom call on the CPU (forecast_cli/native.py builds and registers it).
//
// W is sparse (about 10% of its entries are nonzero), which a dense product cannot use. Here W is in CSR form
// and the sequences go through in blocks of 16: each state unit's 16 values lie side by side, so every
// nonzero of W is one 16-wide multiply-add, and a block's states (units x 16 floats) stay in cache for all of
// its time steps. Blocks are shared out over `threads` threads. The reference is the dense `lax.scan` in
// forecast_cli/models/esn.py (tests/test_native.py holds the two to 1e-5).

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

constexpr int kLanes = 16;  // sequences per block: one 64-byte vector
typedef float Lanes __attribute__((vector_size(64)));

// tanh by the rational approximation XLA and Eigen use for float32 (a few ulp from the exact value).
inline Lanes Tanh(Lanes x) {
  const Lanes hi = Lanes{} + 7.90531110763549805f, lo = -hi;
  x = x > hi ? hi : x;
  x = x < lo ? lo : x;
  const Lanes x2 = x * x;
  Lanes p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
  p = p * x2 + -8.60467152213735e-11f;
  p = p * x2 + 5.12229709037114e-08f;
  p = p * x2 + 1.48572235717979e-05f;
  p = p * x2 + 6.37261928875436e-04f;
  p = p * x2 + 4.89352455891786e-03f;
  p = x * p;
  Lanes q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
  q = q * x2 + 2.26843463243900e-03f;
  q = q * x2 + 4.89352518554385e-03f;
  return p / q;
}

struct Problem {
  int64_t steps, batch, features, units;
  const float *x, *w_in, *bias, *values;  // x: (steps, batch, features); w_in: (units, features)
  const int32_t *indptr, *indices, *start;  // W's CSR rows; start: (batch,), steps before it keep the zero state
  float leak;
  int64_t keep;  // out: (batch, keep, units) the states of the last `keep` steps (batch-major: each
                 // sequence's rows are one block, as the readout's design rows want them)
  float *out, *before;  // before: (batch, units) the state before those steps (zero if keep == steps)
};

// Lane j of each unit's state (V vectors per unit) -> row j of `out` (rows `stride` floats apart), in tiles of
// 16 units: a tile's vectors (16 x V x 64 bytes) stay in L1 while each of its rows is written. (Unit by unit
// along a whole row, every read was another cache line: at 1000 units, 32 sequences of 569 steps took 0.18 s
// keeping 313 steps against 0.10 s keeping one; tiled, 0.08-0.09 s against 0.06-0.08 s.)
template <int V>
void Store(const std::vector<Lanes>& state, int count, float* out, int64_t units, int64_t stride) {
  constexpr int64_t kTile = 16;
  for (int64_t i0 = 0; i0 < units; i0 += kTile) {
    const int64_t n = std::min(kTile, units - i0);
    for (int j = 0; j < count; ++j) {
      float* row = out + j * stride + i0;
      const Lanes* s = &state[i0 * V + j / kLanes];
      for (int64_t i = 0; i < n; ++i) row[i] = s[i * V][j % kLanes];
    }
  }
}

// Sequences [first, first + count) with count <= V * kLanes, from a zero state. V = 2 or 4 runs 32 or 64
// sequences a block: each nonzero of W (its value and column, loaded once) then serves V vectors.
template <int V>
void RunBlock(const Problem& p, int64_t first, int count, std::vector<Lanes>& state, std::vector<Lanes>& next,
              std::vector<Lanes>& inputs) {
  const int64_t N = p.units, F = p.features;
  std::fill(state.begin(), state.begin() + N * V, Lanes{});
  if (p.keep == p.steps) Store<V>(state, count, p.before + first * N, N, N);
  Lanes starts[V];
  for (int v = 0; v < V; ++v) starts[v] = Lanes{} + static_cast<float>(p.steps);  // padding lanes never start
  for (int j = 0; j < count; ++j) starts[j / kLanes][j % kLanes] = static_cast<float>(p.start[first + j]);
  for (int64_t t = 0; t < p.steps; ++t) {
    for (int64_t f = 0; f < F; ++f) {
      for (int v = 0; v < V; ++v) inputs[f * V + v] = Lanes{};
      for (int j = 0; j < count; ++j) inputs[f * V + j / kLanes][j % kLanes] = p.x[(t * p.batch + first + j) * F + f];
    }
    Lanes live[V];
    for (int v = 0; v < V; ++v) live[v] = Lanes{} + static_cast<float>(t) >= starts[v] ? Lanes{} + 1.0f : Lanes{};
    for (int64_t i = 0; i < N; ++i) {
      Lanes a0[V], a1[V];
      for (int v = 0; v < V; ++v) {
        a0[v] = Lanes{} + p.bias[i];
        a1[v] = Lanes{};
        for (int64_t f = 0; f < F; ++f) a0[v] += p.w_in[i * F + f] * inputs[f * V + v];
      }
      if (t > 0) {  // every state starts at zero: the first step has no W s
        int32_t k = p.indptr[i];
        const int32_t end = p.indptr[i + 1];
        for (; k + 2 <= end; k += 2) {  // two chains of multiply-adds, so neither waits on the other
          const float w0 = p.values[k], w1 = p.values[k + 1];
          const Lanes *s0 = &state[p.indices[k] * V], *s1 = &state[p.indices[k + 1] * V];
          for (int v = 0; v < V; ++v) {
            a0[v] += w0 * s0[v];
            a1[v] += w1 * s1[v];
          }
        }
        if (k < end)
          for (int v = 0; v < V; ++v) a0[v] += p.values[k] * state[p.indices[k] * V + v];
      }
      for (int v = 0; v < V; ++v) {
        const Lanes s = state[i * V + v];
        next[i * V + v] = s + live[v] * (p.leak * (Tanh(a0[v] + a1[v]) - s));  // (1 - a) s + a tanh(.), if live
      }
    }
    std::swap(state, next);
    const int64_t kept = t - (p.steps - p.keep);  // the step's place among the kept ones
    if (kept == -1) Store<V>(state, count, p.before + first * N, N, N);
    if (kept >= 0) Store<V>(state, count, p.out + (first * p.keep + kept) * N, N, p.keep * N);
  }
}

template <int V>
void RunBlocks(const Problem& p, int threads) {
  const int64_t per = V * kLanes, blocks = (p.batch + per - 1) / per;
  threads = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads, blocks)));
  auto work = [&p, blocks, threads, per](int worker) {
    std::vector<Lanes> state(p.units * V), next(p.units * V), inputs(std::max<int64_t>(p.features, 1) * V);
    for (int64_t b = worker; b < blocks; b += threads) {
      const int64_t first = b * per;
      RunBlock<V>(p, first, static_cast<int>(std::min<int64_t>(per, p.batch - first)), state, next, inputs);
    }
  };
  if (threads == 1) return work(0);
  std::vector<std::thread> pool;
  for (int w = 1; w < threads; ++w) pool.emplace_back(work, w);
  work(0);
  for (auto& thread : pool) thread.join();
}

// Blocks of 64 or 32 where there are enough of them to keep every thread busy, else of 16: each nonzero of W
// (its value and column, loaded once) then serves four or two vectors. (At 500 and 1000 units, 4,096 windows of
// 21 steps: 64 a block took 10-16% less time than 32; 128 a block, as long as 32.)
void Run(const Problem& p, int threads) {
  if (p.batch >= 4 * kLanes * threads) return RunBlocks<4>(p, threads);
  if (p.batch >= 2 * kLanes * threads) return RunBlocks<2>(p, threads);
  RunBlocks<1>(p, threads);
}

ffi::Error ReservoirImpl(ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> w_in, ffi::Buffer<ffi::F32> bias,
                         ffi::Buffer<ffi::S32> indptr, ffi::Buffer<ffi::S32> indices, ffi::Buffer<ffi::F32> values,
                         ffi::Buffer<ffi::S32> start, float leak, int64_t threads,
                         ffi::ResultBuffer<ffi::F32> out, ffi::ResultBuffer<ffi::F32> before) {
  const auto xd = x.dimensions(), wd = w_in.dimensions(), od = out->dimensions();
  if (xd.size() != 3 || wd.size() != 2 || wd[1] != xd[2] || bias.element_count() != static_cast<size_t>(wd[0]) ||
      indptr.element_count() != static_cast<size_t>(wd[0] + 1) || indices.element_count() != values.element_count() ||
      start.element_count() != static_cast<size_t>(xd[1]) || od.size() != 3 || od[0] != xd[1] || od[1] > xd[0] ||
      od[2] != wd[0] || before->element_count() != static_cast<size_t>(xd[1] * wd[0])) {
    return ffi::Error::InvalidArgument("forecast_reservoir: operand shapes do not agree");
  }
  Problem p{xd[0], xd[1], xd[2], wd[0], x.typed_data(), w_in.typed_data(), bias.typed_data(), values.typed_data(),
            indptr.typed_data(), indices.typed_data(), start.typed_data(), leak, od[1], out->typed_data(),
            before->typed_data()};
  if (p.steps == 0) std::fill(p.before, p.before + p.batch * p.units, 0.0f);
  if (p.steps == 0 || p.batch == 0) return ffi::Error::Success();
  Run(p, static_cast<int>(threads));
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(ForecastReservoir, ReservoirImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Arg<ffi::Buffer<ffi::S32>>()
                                  .Attr<float>("leak")
                                  .Attr<int64_t>("threads")
                                  .Ret<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::Buffer<ffi::F32>>());
