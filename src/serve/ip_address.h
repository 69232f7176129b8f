// IP addresses as bytes, and which of them a server must not be made to reach on a client's
// behalf (SSRF): loopback, private, link-local, multicast, unspecified, reserved and the like,
// IPv4 and IPv6: an IPv4-mapped IPv6 address is judged as its IPv4 address; the prefixes that
// tunnel or translate to IPv4 (NAT64, 6to4, Teredo) are refused whole. Torch-free.
#pragma once

#include <sys/socket.h>

#include <string>

namespace clip::serve {

// A numeric address ("10.0.0.1", "::1", "[::1]") as 4 or 16 bytes in network order, an IPv4-mapped
// IPv6 address as its 4 IPv4 bytes; empty when `text` is not a numeric address.
std::string parse_ip_address(const std::string& text);

// The address of a socket address (AF_INET or AF_INET6) as parse_ip_address gives it; empty for
// another family.
std::string socket_address_bytes(const sockaddr* address);

// Bytes from parse_ip_address (4 or 16) back to text ("10.0.0.1", "::1").
std::string ip_address_text(const std::string& bytes);

// Why a client must not reach `bytes` ("loopback", "private", "link-local", ...), or empty for a
// global unicast address.
std::string non_public_address_kind(const std::string& bytes);

}  // namespace clip::serve
