#include "dataplane/fake_dataplane.h"

#include <fmt/format.h>

#include <algorithm>

namespace vcra::dataplane {

Status FakeDataplane::Connect() {
  std::lock_guard lock(mu_);
  if (refuse_connect_) return absl::UnavailableError("fake dataplane refuses connections");
  connected_ = true;
  ++connects_;
  return absl::OkStatus();
}

Status FakeDataplane::EnsureUplink(const UplinkConfig& uplink) {
  std::lock_guard lock(mu_);
  if (!connected_) return absl::UnavailableError("not connected");
  uplink_up_ = true;
  for (const auto& a : uplink.addresses) {
    if (std::find(uplink_addresses_.begin(), uplink_addresses_.end(), a) == uplink_addresses_.end())
      uplink_addresses_.push_back(a);
  }
  return absl::OkStatus();
}

StatusOr<std::vector<net::Route>> FakeDataplane::DumpOwnedRoutes() {
  std::lock_guard lock(mu_);
  ++dumps_;
  if (!connected_) return absl::UnavailableError("not connected");
  if (dump_failures_left_ > 0) {
    --dump_failures_left_;
    if (absl::IsUnavailable(dump_failure_)) connected_ = false;
    return dump_failure_;
  }
  std::vector<net::Route> out;
  for (const auto& [dst, r] : owned_) out.push_back(r);
  return out;
}

std::vector<OpResult> FakeDataplane::Apply(std::span<const RouteOp> ops) {
  std::lock_guard lock(mu_);
  std::vector<OpResult> out;
  for (const auto& op : ops) {
    if (!connected_) {
      out.push_back({op.seq, absl::UnavailableError("not connected")});
      continue;
    }
    if (auto f = failures_.find(op.route.dst); f != failures_.end()) {
      out.push_back({op.seq, f->second});
      continue;
    }
    if (op.type == OpType::kUpsert && foreign_.contains(op.route.dst)) {
      out.push_back({op.seq, absl::AlreadyExistsError(fmt::format("{} is held by a foreign route",
                                                                  op.route.dst.ToString()))});
      continue;
    }
    ++ops_applied_;
    if (op.type == OpType::kUpsert) {
      owned_[op.route.dst] = op.route;
    } else {
      owned_.erase(op.route.dst);
    }
    out.push_back({op.seq, absl::OkStatus()});
  }
  return out;
}

void FakeDataplane::AddForeignRoute(const net::Route& route) {
  std::lock_guard lock(mu_);
  foreign_[route.dst] = route;
}
void FakeDataplane::RemoveForeignRoute(const net::IpPrefix& dst) {
  std::lock_guard lock(mu_);
  foreign_.erase(dst);
}
Status FakeDataplane::Probe() {
  std::lock_guard lock(mu_);
  ++probes_;
  if (!connected_) return absl::UnavailableError("not connected");
  if (absl::IsUnavailable(probe_failure_)) connected_ = false;
  return probe_failure_;
}
void FakeDataplane::FailDumps(Status status, int count) {
  std::lock_guard lock(mu_);
  dump_failure_ = std::move(status);
  dump_failures_left_ = dump_failure_.ok() ? 0 : count;
}
void FakeDataplane::FailProbes(Status status) {
  std::lock_guard lock(mu_);
  probe_failure_ = std::move(status);
}
size_t FakeDataplane::dumps() const {
  std::lock_guard lock(mu_);
  return dumps_;
}
size_t FakeDataplane::probes() const {
  std::lock_guard lock(mu_);
  return probes_;
}
void FakeDataplane::AddOwnedRouteBehindOurBack(const net::Route& route) {
  std::lock_guard lock(mu_);
  owned_[route.dst] = route;
}
void FakeDataplane::DeleteRouteBehindOurBack(const net::IpPrefix& dst) {
  std::lock_guard lock(mu_);
  owned_.erase(dst);
}
void FakeDataplane::FailPrefix(const net::IpPrefix& dst, Status status) {
  std::lock_guard lock(mu_);
  failures_[dst] = std::move(status);
}
void FakeDataplane::ClearFailures() {
  std::lock_guard lock(mu_);
  failures_.clear();
}
void FakeDataplane::Disconnect(bool wipe) {
  std::lock_guard lock(mu_);
  connected_ = false;
  if (wipe) {
    owned_.clear();
    uplink_up_ = false;
    uplink_addresses_.clear();
  }
}
void FakeDataplane::AddUplinkAddress(const net::IpPrefix& address) {
  std::lock_guard lock(mu_);
  uplink_addresses_.push_back(address);
}
void FakeDataplane::RefuseConnect(bool refuse) {
  std::lock_guard lock(mu_);
  refuse_connect_ = refuse;
}
std::map<net::IpPrefix, net::Route> FakeDataplane::OwnedRoutes() const {
  std::lock_guard lock(mu_);
  return owned_;
}
std::map<net::IpPrefix, net::Route> FakeDataplane::ForeignRoutes() const {
  std::lock_guard lock(mu_);
  return foreign_;
}
std::optional<net::Route> FakeDataplane::Lookup(const net::IpPrefix& dst) const {
  std::lock_guard lock(mu_);
  auto it = owned_.find(dst);
  if (it == owned_.end()) return std::nullopt;
  return it->second;
}
size_t FakeDataplane::ops_applied() const {
  std::lock_guard lock(mu_);
  return ops_applied_;
}
size_t FakeDataplane::connects() const {
  std::lock_guard lock(mu_);
  return connects_;
}
bool FakeDataplane::uplink_up() const {
  std::lock_guard lock(mu_);
  return uplink_up_;
}
std::vector<net::IpPrefix> FakeDataplane::uplink_addresses() const {
  std::lock_guard lock(mu_);
  return uplink_addresses_;
}

}  // namespace vcra::dataplane
