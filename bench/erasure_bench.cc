// `gemini bench erasure`: Reed–Solomon coding of one shard (rs:K+F, ISA-L)
// against copying the same bytes, in the same run.
//   encode   all K+F fragments of a shard vs memcpy of the shard (what a
//            copies:2 replica costs the sender before the wire)
//   decode   the shard from K fragments with min(F, K) data fragments lost
//            vs memcpy of the shard (what placing a full copy fetched from a
//            single peer costs after the wire)
// Prints GiB/s and ratios (coding / memcpy); --json gives the figures.
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "common/units.h"
#include "gemini/placement.h"
#include "redundancy/scheme.h"
#include "timing.h"

namespace gemini::cli {
namespace {

struct ErasureArgs {
  std::string bytes = "256MiB";
  std::string redundancy = "rs:4+2";
  int repeats = 5;
  bool json = false;
};

int RunErasure(const ErasureArgs& a) {
  auto total = ParseBytes(a.bytes);
  auto r = ParseRedundancy(a.redundancy);
  if (!total.ok() || !r.ok() || !r->erasure() || a.repeats < 1) {
    std::cerr << "gemini bench erasure: "
              << (!total.ok() ? total.status().ToString()
                  : !r.ok()   ? r.status().ToString()
                              : "--redundancy must be rs:K+F and --repeats >= 1")
              << "\n";
    return 2;
  }
  auto scheme = redundancy::MakeScheme(*r);
  if (!scheme.ok()) {
    std::cerr << "gemini bench erasure: " << scheme.status().ToString() << "\n";
    return 2;
  }
  const redundancy::Scheme& s = **scheme;
  const uint64_t n = *total, piece = s.PieceBytes(n);
  std::vector<uint8_t> shard(n), copy(n), back(n);
  for (uint64_t i = 0; i < n; ++i) shard[i] = static_cast<uint8_t>(i * 2654435761u >> 13);
  std::vector<std::vector<uint8_t>> pieces(s.pieces(), std::vector<uint8_t>(piece));
  std::vector<uint8_t*> out;
  for (auto& p : pieces) out.push_back(p.data());
  // Lose the first min(F, K) data fragments: the worst case for decoding.
  const int lost = std::min(r->parity, r->data);
  std::vector<redundancy::Piece> have;
  for (int i = lost; i < s.pieces() && static_cast<int>(have.size()) < s.needed(); ++i)
    have.push_back({i, pieces[i]});
  std::vector<double> memcpy_s, encode_s, decode_s;
  Status st;
  for (int rep = 0; rep < a.repeats + 1; ++rep) {  // The first round warms up.
    double m = TimeIt([&] { std::memcpy(copy.data(), shard.data(), n); });
    Status enc_st, dec_st;
    double e = TimeIt([&] { enc_st = s.Encode(shard, out); });
    double d = TimeIt([&] { dec_st = s.Decode(have, back); });
    if (st.ok()) st = !enc_st.ok() ? enc_st : dec_st;
    if (rep == 0) continue;
    memcpy_s.push_back(m);
    encode_s.push_back(e);
    decode_s.push_back(d);
  }
  bool verified = st.ok() && back == shard;
  double gib = static_cast<double>(n) / (1ull << 30);
  double mc = gib / Median(memcpy_s), enc = gib / Median(encode_s), dec = gib / Median(decode_s);
  nlohmann::json j;
  j["redundancy"] = r->ToString();
  j["bytes"] = n;
  j["fragment_bytes"] = piece;
  j["bytes_sent_per_checkpoint"] = piece * (s.pieces() - 1);
  j["bytes_sent_copies_same_tolerance"] = n * r->parity;  // copies:F+1 sends F copies.
  j["lost_data_fragments"] = lost;
  j["repeats"] = a.repeats;
  j["memcpy_gib_per_s"] = mc;
  j["encode_gib_per_s"] = enc;
  j["decode_gib_per_s"] = dec;
  j["encode_ratio"] = enc / mc;
  j["decode_ratio"] = dec / mc;
  j["verified"] = verified;
  if (a.json) {
    std::cout << j.dump(2) << "\n";
  } else {
    std::printf(
        "%s over a %s shard (fragments of %s; %s sent per checkpoint, %s for copies:%d, "
        "which survives as many failures):\n",
        r->ToString().c_str(), FormatBytes(n).c_str(), FormatBytes(piece).c_str(),
        FormatBytes(piece * (s.pieces() - 1)).c_str(), FormatBytes(n * r->parity).c_str(),
        r->parity + 1);
    std::printf("  memcpy of the shard            %7.2f GiB/s\n", mc);
    std::printf("  encode (all fragments)         %7.2f GiB/s  ratio %.3f\n", enc, enc / mc);
    std::printf("  decode (%d data fragments lost) %7.2f GiB/s  ratio %.3f\n", lost, dec, dec / mc);
    std::printf("  round trip bit-identical: %s\n", verified ? "yes" : "NO");
  }
  if (!st.ok()) std::cerr << "gemini bench erasure: " << st.ToString() << "\n";
  return verified ? 0 : 1;
}

void AddErasure(CLI::App& bench) {
  auto a = std::make_shared<ErasureArgs>();
  auto* cmd = bench.add_subcommand("erasure", "Reed-Solomon encode/decode of a shard vs memcpy");
  cmd->add_option("--bytes", a->bytes, "Shard size, e.g. 256MiB")->capture_default_str();
  cmd->add_option("--redundancy", a->redundancy, "rs:K+F")->capture_default_str();
  cmd->add_option("--repeats", a->repeats, "Timed rounds")->capture_default_str();
  cmd->add_flag("--json", a->json, "JSON output");
  cmd->callback([a] { SetExitCode(RunErasure(*a)); });
}

}  // namespace
}  // namespace gemini::cli

GEMINI_REGISTER_BENCH(erasure, gemini::cli::AddErasure);
