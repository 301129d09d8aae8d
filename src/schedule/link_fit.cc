// Least-squares link fit with outlier rejection: see link_fit.h.
#include "schedule/link_fit.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "schedule/stats.h"

namespace gemini::schedule {
namespace {

// Theil-Sen uses at most this many samples (evenly spaced) for its O(n^2) pairs.
constexpr size_t kMaxRobustSamples = 1024;
// Residuals beyond this many scaled MADs are outliers.
constexpr double kOutlierMads = 3.5;

struct Line {
  double intercept = 0;  // seconds
  double slope = 0;      // seconds per byte
};

Status ValidateSamples(const std::vector<TransferSample>& samples) {
  if (samples.size() < 2) return InvalidArgument("link fit: need at least 2 samples");
  for (const TransferSample& s : samples) {
    if (!std::isfinite(s.seconds) || s.seconds < 0) {
      return InvalidArgument("link fit: sample of " + std::to_string(s.bytes) + " bytes took " +
                             std::to_string(s.seconds) + " s");
    }
  }
  auto differs = [&](const TransferSample& s) { return s.bytes != samples.front().bytes; };
  if (std::none_of(samples.begin(), samples.end(), differs)) {
    return InvalidArgument("link fit: all samples have the same size; need two distinct sizes");
  }
  return Status::Ok();
}

double X(const TransferSample& s) { return static_cast<double>(s.bytes); }

Line TheilSen(const std::vector<TransferSample>& all) {
  std::vector<TransferSample> pts;
  size_t stride = (all.size() + kMaxRobustSamples - 1) / kMaxRobustSamples;
  for (size_t i = 0; i < all.size(); i += stride) pts.push_back(all[i]);
  std::vector<double> slopes;
  for (size_t i = 0; i < pts.size(); ++i) {
    for (size_t j = i + 1; j < pts.size(); ++j) {
      if (pts[i].bytes == pts[j].bytes) continue;
      slopes.push_back((pts[j].seconds - pts[i].seconds) / (X(pts[j]) - X(pts[i])));
    }
  }
  Line line;
  line.slope = Median(std::move(slopes));
  std::vector<double> intercepts;
  for (const TransferSample& s : all) intercepts.push_back(s.seconds - line.slope * X(s));
  line.intercept = Median(std::move(intercepts));
  return line;
}

// Samples within kOutlierMads scaled MADs of the robust line.
std::vector<TransferSample> Inliers(const std::vector<TransferSample>& all, const Line& line) {
  std::vector<double> residuals;
  double max_seconds = 0;
  for (const TransferSample& s : all) {
    residuals.push_back(s.seconds - line.intercept - line.slope * X(s));
    max_seconds = std::max(max_seconds, s.seconds);
  }
  double scale = 1.4826 * MedianAbsDeviation(residuals);
  double limit = std::max(kOutlierMads * scale, 1e-9 * max_seconds + 1e-15);
  double center = Median(residuals);
  std::vector<TransferSample> kept;
  for (size_t i = 0; i < all.size(); ++i) {
    if (std::fabs(residuals[i] - center) <= limit) kept.push_back(all[i]);
  }
  return kept;
}

bool HasTwoSizes(const std::vector<TransferSample>& pts) {
  for (const TransferSample& s : pts) {
    if (s.bytes != pts.front().bytes) return true;
  }
  return false;
}

// Ordinary least squares, centred for accuracy; through the origin if asked.
Line LeastSquares(const std::vector<TransferSample>& pts, bool through_origin) {
  double mx = 0, my = 0;
  if (!through_origin) {
    for (const TransferSample& s : pts) {
      mx += X(s);
      my += s.seconds;
    }
    mx /= static_cast<double>(pts.size());
    my /= static_cast<double>(pts.size());
  }
  double sxy = 0, sxx = 0;
  for (const TransferSample& s : pts) {
    sxy += (X(s) - mx) * (s.seconds - my);
    sxx += (X(s) - mx) * (X(s) - mx);
  }
  Line line;
  line.slope = sxx > 0 ? sxy / sxx : 0;
  line.intercept = my - line.slope * mx;
  return line;
}

double RmsResidual(const std::vector<TransferSample>& pts, const Line& line) {
  double sq = 0;
  for (const TransferSample& s : pts) {
    double r = s.seconds - line.intercept - line.slope * X(s);
    sq += r * r;
  }
  return std::sqrt(sq / static_cast<double>(pts.size()));
}

}  // namespace

Result<LinkModel> FitLinkModel(const std::vector<TransferSample>& samples) {
  GEMINI_RETURN_IF_ERROR(ValidateSamples(samples));
  std::vector<TransferSample> used = Inliers(samples, TheilSen(samples));
  if (used.size() < 2 || !HasTwoSizes(used)) used = samples;
  Line line = LeastSquares(used, /*through_origin=*/false);
  if (line.intercept < 0) line = LeastSquares(used, /*through_origin=*/true);
  if (!(line.slope > 0) || !std::isfinite(line.slope)) {
    return InvalidArgument("link fit: transfer time does not grow with size (slope " +
                           std::to_string(line.slope) + " s/byte)");
  }
  LinkModel model;
  model.bandwidth_Bps = 1.0 / line.slope;
  model.alpha_s = line.intercept;
  model.samples_used = static_cast<int>(used.size());
  model.outliers = static_cast<int>(samples.size() - used.size());
  model.rms_residual_s = RmsResidual(used, line);
  return model;
}

}  // namespace gemini::schedule
