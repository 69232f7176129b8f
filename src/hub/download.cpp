#include "hub/download.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <thread>

#include "clip/error.h"
#include "hub/cache.h"
#include "hub/http.h"
#include "hub/validate.h"
#include "util/file_io.h"
#include "util/strings.h"

namespace clip::hub {
namespace {

constexpr int kMaxRedirects = 5;

struct FileMeta {
  std::string commit, etag, download_url;
  uint64_t size = 0;  // 0: unknown
};

std::string where(const std::string& repo, const std::string& revision, const std::string& file) {
  return repo + "@" + revision + ": " + file;
}

// Server text in a message: printable ASCII only, bounded.
std::string printable(const std::string& s) {
  std::string out;
  for (unsigned char c : s.substr(0, 300)) out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
  return out;
}

std::vector<std::string> headers_for(const HubOptions& o, const std::string& url) {
  std::vector<std::string> h{"Accept-Encoding: identity"};
  // The token goes to the configured endpoint only, never to the CDN a redirect names.
  if (!o.token.empty() && url_origin(url) == url_origin(o.endpoint)) h.push_back("Authorization: Bearer " + o.token);
  return h;
}

[[noreturn]] void http_failure(const HttpResponse& r, const std::string& repo, const std::string& revision,
                               const std::string& file, const std::string& endpoint) {
  const std::string at = where(repo, revision, file);
  std::string detail;
  if (r.headers.count("x-error-message")) detail = " (" + printable(r.headers.at("x-error-message")) + ")";
  if (r.status == 401 || r.status == 403)
    throw Error(at + ": the Hub answered " + std::to_string(r.status) + detail + ": the repo " + repo +
                    " is gated or private, or does not exist. Accept its terms on " + endpoint + "/" + repo +
                    " and give a token: HF_TOKEN=... or the file $HF_HOME/token (`huggingface-cli login` writes it)",
                ErrorKind::kIo);
  if (r.status == 404)
    throw Error(at + ": not found (404 from " + endpoint + detail + "): repo " + repo + ", revision " + revision +
                    ", file " + file,
                ErrorKind::kNotFound);
  if (r.status == 0)
    throw Error(at + ": cannot reach " + endpoint + ": " + printable(r.transport_error) +
                    " (offline? pass --offline or HF_HUB_OFFLINE=1 to use the cache only)",
                ErrorKind::kIo);
  throw Error(at + ": the Hub answered HTTP " + std::to_string(r.status) + detail, ErrorKind::kIo);
}

// Runs `attempt` until it succeeds or fails for good: retries transport errors and 5xx/429 with
// exponential backoff.
HttpResponse with_retries(const HubOptions& o, const std::function<HttpResponse()>& attempt) {
  for (int i = 0;; ++i) {
    HttpResponse r = attempt();
    const bool retry = (r.status == 0 && r.retryable) || r.status >= 500 || r.status == 429 ||
                       (r.retryable && !r.transport_error.empty());
    if (!retry || i >= o.retries) return r;
    std::this_thread::sleep_for(std::chrono::duration<double>(o.backoff_seconds * (1 << i)));
  }
}

FileMeta fetch_meta(const HubOptions& o, const std::string& repo, const std::string& revision,
                    const std::string& file) {
  std::string url = o.endpoint + "/" + repo + "/resolve/" + escape_path(revision) + "/" + escape_path(file);
  for (int redirects = 0;; ++redirects) {
    HttpResponse r = with_retries(o, [&] {
      HttpRequest req;
      req.url = url;
      req.head = true;
      req.headers = headers_for(o, url);
      return http_request(req);
    });
    const bool redirect = r.status >= 300 && r.status < 400 && r.headers.count("location");
    if (!redirect && (r.status < 200 || r.status >= 300)) http_failure(r, repo, revision, file, o.endpoint);
    // A redirect within the endpoint is a renamed repo: follow it. One elsewhere is the LFS
    // storage: its headers already carry what we need, and the body comes from there.
    const std::string next = redirect ? resolve_location(url, r.headers.at("location")) : "";
    if (redirect && url_origin(next) == url_origin(url) && !r.headers.count("x-linked-etag")) {
      if (redirects >= kMaxRedirects) throw Error(where(repo, revision, file) + ": too many redirects", ErrorKind::kIo);
      url = next;
      continue;
    }
    FileMeta meta;
    meta.commit = r.headers.count("x-repo-commit") ? r.headers.at("x-repo-commit") : "";
    std::string etag = r.headers.count("x-linked-etag") ? r.headers.at("x-linked-etag")
                                                        : (r.headers.count("etag") ? r.headers.at("etag") : "");
    if (util::starts_with(etag, "W/")) etag = etag.substr(2);
    if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') etag = etag.substr(1, etag.size() - 2);
    meta.etag = etag;
    if (!is_commit_hash(meta.commit))
      throw Error(where(repo, revision, file) + ": the server sent no valid X-Repo-Commit (found \"" +
                      printable(meta.commit) + "\")",
                  ErrorKind::kIo);
    validate_blob_name(meta.etag, where(repo, revision, file) + " (ETag from the server)");
    const std::string size = r.headers.count("x-linked-size")    ? r.headers.at("x-linked-size")
                             : r.headers.count("content-length") ? r.headers.at("content-length")
                                                                 : "";
    if (!size.empty() && size.find_first_not_of("0123456789") == std::string::npos && size.size() < 19)
      meta.size = std::stoull(size);
    meta.download_url = redirect ? next : url;
    return meta;
  }
}

// Hex digest of a whole file: sha256, or the git blob sha1 ("blob <size>\0" + bytes).
std::string file_digest(const std::string& path, bool git_sha1) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!f) throw Error(path + ": cannot read the downloaded file", ErrorKind::kIo);
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), git_sha1 ? EVP_sha1() : EVP_sha256(), nullptr);
  if (git_sha1) {
    struct stat st {};
    ::stat(path.c_str(), &st);
    const std::string header = "blob " + std::to_string(st.st_size) + std::string(1, '\0');
    EVP_DigestUpdate(ctx.get(), header.data(), header.size());
  }
  std::vector<char> buffer(1 << 20);
  size_t n;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), f.get())) > 0) EVP_DigestUpdate(ctx.get(), buffer.data(), n);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &length);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out += hex[digest[i] >> 4];
    out += hex[digest[i] & 15];
  }
  return out;
}

bool is_hex(const std::string& s, size_t length) {
  return s.size() == length && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// A progress line on a terminal: bytes, rate, time left.
class ProgressLine {
 public:
  ProgressLine(bool enabled, std::string file, uint64_t offset)
      : enabled_(enabled && ::isatty(2)), file_(std::move(file)), offset_(offset) {}
  ~ProgressLine() {
    if (shown_) std::fprintf(stderr, "\n");
  }
  void update(uint64_t now, uint64_t total) {
    if (!enabled_) return;
    const auto t = std::chrono::steady_clock::now();
    if (shown_ && t - last_ < std::chrono::milliseconds(250)) return;
    last_ = t;
    shown_ = true;
    const double seconds = std::chrono::duration<double>(t - start_).count();
    const double rate = seconds > 0 ? now / seconds : 0;
    const double mb = 1e6;
    std::fprintf(stderr, "\r%s: %.1f / %.1f MB, %.1f MB/s", file_.c_str(), (offset_ + now) / mb, (offset_ + total) / mb,
                 rate / mb);
    if (rate > 0 && total > now) std::fprintf(stderr, ", %.0f s left", (total - now) / rate);
    std::fprintf(stderr, "   ");
  }

 private:
  bool enabled_, shown_ = false;
  std::string file_;
  uint64_t offset_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_;
};

// Appends the blob's bytes to `incomplete` from where it stops (Range), retrying and resuming.
void fetch_blob(const HubOptions& o, const FileMeta& meta, const std::string& incomplete, const std::string& at) {
  for (int attempt = 0;; ++attempt) {
    struct stat st {};
    uint64_t offset = ::stat(incomplete.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
    if (meta.size && offset > meta.size) {
      ::truncate(incomplete.c_str(), 0);
      offset = 0;
    }
    if (meta.size && offset == meta.size) return;
    std::unique_ptr<FILE, int (*)(FILE*)> out(std::fopen(incomplete.c_str(), "ab"), std::fclose);
    if (!out) throw Error(incomplete + ": cannot write: " + std::strerror(errno), ErrorKind::kIo);
    ProgressLine progress(o.progress, at, offset);
    std::string url = meta.download_url;
    HttpResponse r;
    uint64_t written = 0;
    std::string write_error;
    for (int redirects = 0;; ++redirects) {
      HttpRequest req;
      req.url = url;
      req.headers = headers_for(o, url);
      if (offset > 0) req.headers.push_back("Range: bytes=" + std::to_string(offset) + "-");
      req.sink = [&](long status, const char* data, size_t size) {
        if (status == 200 && offset > 0 && written == 0) {
          // The server ignored Range and sends the whole file: start the partial file over.
          if (std::fflush(out.get()) != 0 || ::ftruncate(::fileno(out.get()), 0) != 0) {
            write_error = std::string("cannot restart the partial file: ") + std::strerror(errno);
            return false;
          }
          offset = 0;
        }
        if (meta.size && offset + written + size > meta.size) {
          write_error = "the server sent more than the " + std::to_string(meta.size) + " bytes announced";
          return false;
        }
        if (std::fwrite(data, 1, size, out.get()) != size) {
          write_error = std::string("write failed: ") + std::strerror(errno);
          return false;
        }
        written += size;
        return true;
      };
      req.progress = [&](uint64_t now, uint64_t total) { progress.update(now, total); };
      r = http_request(req);
      if (r.status >= 300 && r.status < 400 && r.headers.count("location") && redirects < kMaxRedirects) {
        url = resolve_location(url, r.headers.at("location"));
        continue;
      }
      break;
    }
    if (!write_error.empty()) {
      std::fflush(out.get());
      throw Error(incomplete + ": " + write_error, ErrorKind::kIo);
    }
    if (std::fflush(out.get()) != 0)
      throw Error(incomplete + ": write failed: " + std::strerror(errno), ErrorKind::kIo);
    if (r.status == 416) {  // our partial file is not a prefix of this blob
      out.reset();
      ::truncate(incomplete.c_str(), 0);
      if (attempt < o.retries) continue;
    }
    const bool ok = (r.status == 200 || r.status == 206) && r.transport_error.empty();
    if (ok) {
      if (!meta.size) return;
      if (offset + written == meta.size) return;
    }
    const bool retry = r.retryable || r.status >= 500 || r.status == 429 || (ok && meta.size);
    if (!retry || attempt >= o.retries) {
      if (r.status >= 200 && r.status < 300)
        throw Error(at + ": download broke off at " + std::to_string(offset + written) +
                        " bytes: " + printable(r.transport_error) + " (run again to resume)",
                    ErrorKind::kIo);
      throw Error(at + ": download failed: HTTP " + std::to_string(r.status) + " " + printable(r.transport_error),
                  ErrorKind::kIo);
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(o.backoff_seconds * (1 << attempt)));
  }
}

class FileLock {
 public:
  explicit FileLock(const std::string& path) : fd_(::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0644)) {
    if (fd_ < 0 || ::flock(fd_, LOCK_EX) != 0)
      throw Error(path + ": cannot lock: " + std::strerror(errno), ErrorKind::kIo);
  }
  ~FileLock() { ::close(fd_); }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

 private:
  int fd_;
};

}  // namespace

std::string download_file(const HubOptions& o, const std::string& repo, const std::string& revision,
                          const std::string& file) {
  validate_repo_id(repo, "repo");
  validate_revision(revision, repo + " revision");
  validate_repo_file(file, repo + " file");
  const std::string at = where(repo, revision, file);
  const FileMeta meta = fetch_meta(o, repo, revision, file);
  const RepoCache cache(o.cache_dir, repo);
  const std::string blob = cache.blob_path(meta.etag);
  if (!util::file_exists(blob)) {
    make_dirs(cache.folder() + "/blobs");
    make_dirs(std::filesystem::path(cache.lock_path(meta.etag)).parent_path().string());
    FileLock lock(cache.lock_path(meta.etag));
    if (!util::file_exists(blob)) {  // another process may have finished it while we waited
      const std::string incomplete = blob + ".incomplete";
      fetch_blob(o, meta, incomplete, at);
      const bool lfs = is_hex(meta.etag, 64), git = is_hex(meta.etag, 40);
      if (lfs || git) {
        const std::string digest = file_digest(incomplete, git);
        if (digest != meta.etag) {
          ::unlink(incomplete.c_str());
          throw Error(at + ": the downloaded file has " + (lfs ? "sha256 " : "git sha1 ") + digest + ", expected " +
                          meta.etag + " (corrupted in transit; removed, run again)",
                      ErrorKind::kIo);
        }
      }
      if (::rename(incomplete.c_str(), blob.c_str()) != 0)
        throw Error(blob + ": cannot rename the finished download: " + std::strerror(errno), ErrorKind::kIo);
    }
  }
  cache.link_snapshot(meta.commit, file, meta.etag);
  cache.write_ref(revision, meta.commit);
  return cache.snapshot_path(meta.commit, file);
}

}  // namespace clip::hub
