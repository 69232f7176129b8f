#include "serve/ip_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdint>

namespace clip::serve {
namespace {

uint8_t byte_at(const std::string& b, size_t i) { return static_cast<uint8_t>(b[i]); }

// Whether the first `bits` bits of `b` equal those of `prefix` (given as bytes).
bool in_prefix(const std::string& b, std::initializer_list<uint8_t> prefix, int bits) {
  size_t i = 0;
  for (const uint8_t p : prefix) {
    if (bits <= 0) break;
    const uint8_t mask = bits >= 8 ? 0xFF : static_cast<uint8_t>(0xFF << (8 - bits));
    if ((byte_at(b, i) & mask) != (p & mask)) return false;
    bits -= 8;
    ++i;
  }
  return true;
}

std::string ipv4_kind(const std::string& b) {
  if (in_prefix(b, {0}, 8)) return "unspecified (0.0.0.0/8)";
  if (in_prefix(b, {10}, 8)) return "private (10.0.0.0/8)";
  if (in_prefix(b, {100, 64}, 10)) return "shared address space (100.64.0.0/10)";
  if (in_prefix(b, {127}, 8)) return "loopback (127.0.0.0/8)";
  if (in_prefix(b, {169, 254}, 16)) return "link-local (169.254.0.0/16)";
  if (in_prefix(b, {172, 16}, 12)) return "private (172.16.0.0/12)";
  if (in_prefix(b, {192, 0, 0}, 24)) return "IETF protocol assignments (192.0.0.0/24)";
  if (in_prefix(b, {192, 0, 2}, 24) || in_prefix(b, {198, 51, 100}, 24) || in_prefix(b, {203, 0, 113}, 24))
    return "documentation";
  if (in_prefix(b, {192, 88, 99}, 24)) return "6to4 relay anycast (192.88.99.0/24)";
  if (in_prefix(b, {192, 168}, 16)) return "private (192.168.0.0/16)";
  if (in_prefix(b, {198, 18}, 15)) return "benchmarking (198.18.0.0/15)";
  if (in_prefix(b, {224}, 4)) return "multicast (224.0.0.0/4)";
  if (in_prefix(b, {240}, 4)) return "reserved or broadcast (240.0.0.0/4)";
  return "";
}

}  // namespace

std::string parse_ip_address(const std::string& text) {
  std::string t = text;
  if (t.size() > 2 && t.front() == '[' && t.back() == ']') t = t.substr(1, t.size() - 2);
  unsigned char buf[16];
  if (inet_pton(AF_INET, t.c_str(), buf) == 1) return std::string(reinterpret_cast<char*>(buf), 4);
  if (inet_pton(AF_INET6, t.c_str(), buf) != 1) return "";
  sockaddr_in6 address{};
  address.sin6_family = AF_INET6;
  std::copy(buf, buf + 16, reinterpret_cast<unsigned char*>(&address.sin6_addr));
  return socket_address_bytes(reinterpret_cast<const sockaddr*>(&address));  // ::ffff:a.b.c.d as IPv4
}

std::string socket_address_bytes(const sockaddr* address) {
  if (address->sa_family == AF_INET)
    return std::string(reinterpret_cast<const char*>(&reinterpret_cast<const sockaddr_in*>(address)->sin_addr), 4);
  if (address->sa_family != AF_INET6) return "";
  const std::string bytes(reinterpret_cast<const char*>(&reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr), 16);
  return in_prefix(bytes, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF}, 96) ? bytes.substr(12) : bytes;
}

std::string ip_address_text(const std::string& bytes) {
  char buf[INET6_ADDRSTRLEN] = {0};
  const int family = bytes.size() == 4 ? AF_INET : AF_INET6;
  if ((bytes.size() != 4 && bytes.size() != 16) || !inet_ntop(family, bytes.data(), buf, sizeof(buf))) return "?";
  return buf;
}

std::string non_public_address_kind(const std::string& b) {
  if (b.size() == 4) return ipv4_kind(b);
  if (b.size() != 16) return "not an IP address";
  const std::string zeros(16, '\0');
  if (b == zeros) return "unspecified (::)";
  if (b == zeros.substr(0, 15) + '\x01') return "loopback (::1)";
  // IPv4-mapped: judged by the IPv4 address (parse_ip_address already gives 4 bytes for these).
  if (in_prefix(b, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF}, 96)) {
    const std::string v4 = ipv4_kind(b.substr(12));
    return v4.empty() ? "" : "IPv4-mapped " + v4;
  }
  if (in_prefix(b, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 96)) return "IPv4-compatible (::/96, deprecated)";
  // Prefixes that tunnel or translate to IPv4 somewhere else: refused whatever IPv4 they carry.
  if (in_prefix(b, {0x00, 0x64, 0xFF, 0x9B}, 32)) return "NAT64 (64:ff9b::/32)";
  if (in_prefix(b, {0x20, 0x02}, 16)) return "6to4 (2002::/16)";
  if (in_prefix(b, {0x20, 0x01, 0x00, 0x00}, 32)) return "Teredo (2001::/32)";
  if (in_prefix(b, {0x20, 0x01, 0x0D, 0xB8}, 32)) return "documentation (2001:db8::/32)";
  if (in_prefix(b, {0x01, 0x00, 0, 0, 0, 0, 0, 0}, 64)) return "discard (100::/64)";
  if (in_prefix(b, {0xFC}, 7)) return "unique local (fc00::/7)";
  if (in_prefix(b, {0xFE, 0x80}, 10)) return "link-local (fe80::/10)";
  if (in_prefix(b, {0xFE, 0xC0}, 10)) return "site-local (fec0::/10)";
  if (in_prefix(b, {0xFF}, 8)) return "multicast (ff00::/8)";
  if (!in_prefix(b, {0x20}, 3)) return "reserved (outside 2000::/3, the global unicast range)";
  return "";
}

}  // namespace clip::serve
