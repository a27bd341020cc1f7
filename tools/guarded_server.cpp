// SPDX-License-Identifier: Apache-2.0
#include "tools/guarded_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace gpushare::tools {
namespace {

// httplib's accept loop calls each task at once: our process_and_close_socket only adopts the
// socket, so a pool of threads waiting for it would be idle.
class InlineTaskQueue : public httplib::TaskQueue {
 public:
  void enqueue(std::function<void()> fn) override { fn(); }
  void shutdown() override {}
};

// The head, as httplib's parser reads it; the answer, collected for the poll thread to write.
class HeadStream : public httplib::Stream {
 public:
  HeadStream(const std::string& head, const std::string& peer, int peer_port, std::string* out)
      : head_(head), peer_(peer), peer_port_(peer_port), out_(out) {}
  bool is_readable() const override { return read_ < head_.size(); }
  bool is_writable() const override { return true; }
  ssize_t read(char* ptr, size_t size) override {
    const size_t n = std::min(size, head_.size() - read_);
    std::memcpy(ptr, head_.data() + read_, n);
    read_ += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    out_->append(ptr, size);
    return static_cast<ssize_t>(size);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = peer_;
    port = peer_port_;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip.clear();
    port = 0;
  }
  socket_t socket() const override { return INVALID_SOCKET; }

 private:
  const std::string& head_;
  size_t read_ = 0;
  const std::string& peer_;
  int peer_port_;
  std::string* out_;
};

void PeerOf(int fd, std::string* address, int* port) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  char text[INET6_ADDRSTRLEN] = "?";
  *port = 0;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    if (addr.ss_family == AF_INET) {
      const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
      inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
      *port = ntohs(in->sin_port);
    } else if (addr.ss_family == AF_INET6) {
      const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
      inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
      *port = ntohs(in6->sin6_port);
    }
  }
  *address = text;
}

// Where the head ends (after its blank line), or npos. Lines end in CRLF; a bare LF is taken too,
// so that httplib answers such a request at once (400) rather than after the deadline.
size_t HeadEnd(const std::string& in, size_t searched_from) {
  const size_t from = searched_from > 3 ? searched_from - 3 : 0;
  const size_t crlf = in.find("\r\n\r\n", from);
  const size_t lf = in.find("\n\n", from);
  if (crlf == std::string::npos && lf == std::string::npos) return std::string::npos;
  return crlf < lf ? crlf + 4 : lf + 2;
}

}  // namespace

GuardedServer::GuardedServer(ServerLimits limits) : limits_(limits) {
  new_task_queue = [] { return new InlineTaskQueue; };
  // Only bodiless GET and HEAD: the poll thread never reads past the head, so a body is refused
  // here, before httplib would read it (pre-routing runs first).
  set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
    if (req.method != "GET" && req.method != "HEAD") {
      res.status = 405;
      res.set_header("Allow", "GET, HEAD");
      res.set_content("only GET and HEAD are served\n", "text/plain");
      return HandlerResponse::Handled;
    }
    const std::string length = req.get_header_value("Content-Length");
    if (req.has_header("Transfer-Encoding") || (!length.empty() && length != "0")) {
      res.status = 413;
      res.set_content("a request body is not accepted\n", "text/plain");
      return HandlerResponse::Handled;
    }
    return HandlerResponse::Unhandled;
  });
  // "Expect: 100-continue" announces a body: refused at once instead of inviting it.
  set_expect_100_continue_handler([](const httplib::Request&, httplib::Response& res) {
    res.status = 413;
    res.set_content("a request body is not accepted\n", "text/plain");
    return 413;
  });
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  poller_ = std::thread([this] { PollLoop(); });
  for (size_t i = 0; i < std::max<size_t>(limits_.workers, 1); ++i) workers_.emplace_back([this] { WorkLoop(); });
}

GuardedServer::~GuardedServer() {
  stop();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  work_.notify_all();
  Wake();
  poller_.join();
  for (std::thread& t : workers_) t.join();
  for (const int fd : adopted_) close(fd);
  for (const auto& [id, c] : connections_) close(c.fd);
  close(wake_fd_);
}

int GuardedServer::Bind(const std::string& host, int port) {
  int bound = port;
  if (port == 0) {
    bound = bind_to_any_port(host);
  } else if (!bind_to_port(host, port)) {
    bound = -1;
  }
  if (bound >= 0) ::listen(svr_sock_, SOMAXCONN);  // again on a listening socket: a wider backlog
  return bound;
}

bool GuardedServer::process_and_close_socket(socket_t sock) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!stopping_) {
      adopted_.push_back(sock);
      sock = INVALID_SOCKET;
    }
  }
  if (sock != INVALID_SOCKET) close(sock);
  Wake();
  return true;
}

void GuardedServer::Wake() {
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

void GuardedServer::WorkLoop() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    std::string out;
    HeadStream stream(job.head, job.peer, job.peer_port, &out);
    bool connection_closed = false;
    try {
      process_request(stream, /*close_connection=*/true, connection_closed, [](httplib::Request&) {});
    } catch (...) {
      out = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      answers_.emplace_back(job.id, std::move(out));
    }
    Wake();
  }
}

void GuardedServer::Close(uint64_t id) {
  const auto it = connections_.find(id);
  if (it == connections_.end()) return;
  if (it->second.phase == Phase::kServing) {  // its job may still be queued: drop it
    std::lock_guard<std::mutex> lock(mutex_);
    jobs_.erase(std::remove_if(jobs_.begin(), jobs_.end(), [id](const Job& j) { return j.id == id; }), jobs_.end());
  }
  close(it->second.fd);
  connections_.erase(it);
}

// A canned error for a head that broke a bound: one attempt to send it, then closed.
void GuardedServer::Refuse(uint64_t id, const char* status_line) {
  Connection& c = connections_.at(id);
  const std::string answer = std::string("HTTP/1.1 ") + status_line +
                             "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  [[maybe_unused]] const ssize_t n = send(c.fd, answer.data(), answer.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  Close(id);
}

// Closes the oldest connection (of `peer`, or of all) still sending its head or receiving its
// answer; false when there is none (all are being served).
bool GuardedServer::EvictOldest(const std::string* peer) {
  for (const auto& [id, c] : connections_) {
    if (c.phase == Phase::kServing || (peer != nullptr && c.peer != *peer)) continue;
    Close(id);
    return true;
  }
  return false;
}

void GuardedServer::Admit(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  Connection c;
  c.fd = fd;
  c.accepted = Clock::now();
  PeerOf(fd, &c.peer, &c.peer_port);
  const size_t of_peer = static_cast<size_t>(
      std::count_if(connections_.begin(), connections_.end(), [&](const auto& e) { return e.second.peer == c.peer; }));
  if ((of_peer >= limits_.max_connections_per_client && !EvictOldest(&c.peer)) ||
      (connections_.size() >= limits_.max_connections && !EvictOldest(nullptr))) {
    close(fd);
    return;
  }
  connections_.emplace(next_id_++, std::move(c));
}

void GuardedServer::Read(uint64_t id, Connection& c) {
  char buf[4096];
  for (;;) {
    const size_t room = limits_.head_max_bytes - c.in.size();
    const ssize_t n = recv(c.fd, buf, std::min(sizeof buf, room), 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n <= 0) return Close(id);  // the client went away before its head was complete
    const size_t searched = c.in.size();
    c.in.append(buf, static_cast<size_t>(n));
    const size_t end = HeadEnd(c.in, searched);
    if (end != std::string::npos) {
      c.in.resize(end);  // a body, if any, is left unread
      if (static_cast<size_t>(std::count(c.in.begin(), c.in.end(), '\n')) > limits_.head_max_lines)
        return Refuse(id, "431 Request Header Fields Too Large");
      c.phase = Phase::kServing;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        jobs_.push_back(Job{id, std::move(c.in), c.peer, c.peer_port});
      }
      work_.notify_one();
      return;
    }
    if (c.in.size() >= limits_.head_max_bytes) return Refuse(id, "431 Request Header Fields Too Large");
  }
}

void GuardedServer::Write(uint64_t id, Connection& c) {
  while (c.out_sent < c.out.size()) {
    const ssize_t n = send(c.fd, c.out.data() + c.out_sent, c.out.size() - c.out_sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n <= 0) return Close(id);
    c.out_sent += static_cast<size_t>(n);
  }
  Close(id);  // one request per connection: the answer says "Connection: close"
}

void GuardedServer::PollLoop() {
  std::vector<pollfd> fds;
  std::vector<uint64_t> ids;
  for (;;) {
    std::vector<int> adopted;
    std::vector<std::pair<uint64_t, std::string>> answers;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) return;
      adopted.swap(adopted_);
      answers.swap(answers_);
    }
    for (const int fd : adopted) Admit(fd);
    for (auto& [id, out] : answers) {
      const auto it = connections_.find(id);
      if (it == connections_.end() || it->second.phase != Phase::kServing) continue;  // closed meanwhile
      it->second.phase = Phase::kAnswering;
      it->second.out = std::move(out);
      Write(id, it->second);
    }

    // Deadlines: a late head is refused (408); a late answer is cut.
    const Clock::time_point now = Clock::now();
    Clock::time_point next = now + std::chrono::seconds(60);
    for (auto it = connections_.begin(); it != connections_.end();) {
      const uint64_t id = it->first;
      const Connection& c = it->second;
      const bool head = c.phase == Phase::kHead;
      const Clock::time_point due = c.accepted + (head ? limits_.head_deadline : limits_.exchange_deadline);
      ++it;  // before Refuse or Close erase this one
      if (due <= now) {
        if (head) Refuse(id, "408 Request Timeout");
        else Close(id);
      } else {
        next = std::min(next, due);
      }
    }

    fds.assign(1, pollfd{wake_fd_, POLLIN, 0});
    ids.assign(1, 0);
    for (const auto& [id, c] : connections_) {
      if (c.phase == Phase::kServing) continue;
      fds.push_back(pollfd{c.fd, static_cast<short>(c.phase == Phase::kHead ? POLLIN : POLLOUT), 0});
      ids.push_back(id);
    }
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - now) + std::chrono::milliseconds(1);
    if (poll(fds.data(), fds.size(), static_cast<int>(wait.count())) <= 0) continue;
    if ((fds[0].revents & POLLIN) != 0) {
      uint64_t count = 0;
      [[maybe_unused]] const ssize_t n = ::read(wake_fd_, &count, sizeof count);
    }
    for (size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      const auto it = connections_.find(ids[i]);
      if (it == connections_.end()) continue;
      if (it->second.phase == Phase::kHead) Read(ids[i], it->second);
      else if (it->second.phase == Phase::kAnswering) Write(ids[i], it->second);
    }
  }
}

}  // namespace gpushare::tools
