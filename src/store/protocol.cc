#include "store/protocol.h"

namespace gemini {

std::string EncodeReply(const Status& status, const std::string& body) {
  Writer w;
  w.PutU32(static_cast<uint32_t>(status.code()));
  w.PutString(status.message());
  if (status.ok()) w.PutRaw(body.data(), body.size());
  return w.Take();
}

Status DecodeReply(const std::string& payload, std::string* body) {
  Reader r(payload);
  uint32_t code = 0;
  std::string message;
  if (!r.GetU32(&code) || !r.GetString(&message) || code > static_cast<uint32_t>(Code::kInternal))
    return Internal("malformed reply from the agent");
  if (code != 0) return Status(static_cast<Code>(code), message);
  body->assign(payload, payload.size() - r.remaining(), r.remaining());
  return Status::Ok();
}

void PutCrcs(Writer& w, const std::vector<uint32_t>& crcs) {
  w.PutU32(static_cast<uint32_t>(crcs.size()));
  w.PutRaw(crcs.data(), crcs.size() * 4);
}

bool GetCrcs(Reader& r, std::vector<uint32_t>* crcs) {
  uint32_t n = 0;
  if (!r.GetU32(&n) || n > r.remaining() / 4) return false;
  crcs->resize(n);
  return r.GetRaw(crcs->data(), n * 4ull);
}

}  // namespace gemini
