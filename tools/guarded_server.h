// SPDX-License-Identifier: Apache-2.0
// An httplib::Server that slow or hostile clients cannot stall or bloat (gpushare-exporter's).
//
// Why not httplib's own limits: Debian 12's cpp-httplib 0.11.4 is a compiled library, and what
// it bounds is baked into it. It reads each connection on one of its pool's threads
// (CPPHTTPLIB_THREAD_POOL_COUNT: 8 on a small node) with a timeout per read only, so a client
// sending a header line every 2 s holds a thread forever, 8 such clients hold them all, and every
// other connection waits in an unbounded queue. It bounds each header line
// (CPPHTTPLIB_HEADER_MAX_LENGTH, 8192) but not their number, and reads a POST's body into memory
// before routing (set_payload_max_length still reads the whole body, to discard it). Its hooks
// (pre-routing, socket options, read timeouts) run after the head was read, or per read.
//
// So the head is read here, before httplib parses it. httplib's accept loop hands each socket to
// process_and_close_socket, overridden to adopt it; one poll() thread reads every connection's
// head without blocking, under a deadline for the whole head and bounds on its bytes and lines. A
// complete head goes to a small pool that runs httplib's own parser and routes on it in memory
// (process_request), and the poll thread writes the answer back, without blocking, before the
// exchange's deadline. What follows the head (a body) is never read: GET and HEAD without a body
// are served, anything else is refused, and each connection serves one request.
//
// Connections are bounded per client address and in all. Past a bound, the oldest connection of
// that client (or of all) that is still sending its head or receiving its answer is closed: a new
// connection always gets in, and one client's flood evicts its own connections, not others'.
#pragma once
#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace gpushare::tools {

struct ServerLimits {
  size_t head_max_bytes = 8192;  // request line and headers, with their line ends
  size_t head_max_lines = 100;   // request line, headers and the blank line
  std::chrono::milliseconds head_deadline{3000};       // from accept to the head's blank line
  std::chrono::milliseconds exchange_deadline{10000};  // from accept to the answer's last byte
  size_t max_connections = 256;
  size_t max_connections_per_client = 64;  // per remote address
  size_t workers = 2;                      // threads running httplib's parser and the handlers
};

class GuardedServer : public httplib::Server {
 public:
  explicit GuardedServer(ServerLimits limits = {});
  ~GuardedServer() override;
  GuardedServer(const GuardedServer&) = delete;
  GuardedServer& operator=(const GuardedServer&) = delete;

  // Binds host:port (0: a free port) with a listen backlog of SOMAXCONN (httplib's is 5, baked
  // in); the port bound, or -1. Then listen_after_bind() serves.
  int Bind(const std::string& host, int port);

 private:
  using Clock = std::chrono::steady_clock;
  enum class Phase { kHead, kServing, kAnswering };
  struct Connection {
    int fd = -1;
    std::string peer;  // remote address: the per-client key
    int peer_port = 0;
    Clock::time_point accepted;
    Phase phase = Phase::kHead;
    std::string in;   // the head so far
    std::string out;  // the answer, once served
    size_t out_sent = 0;
  };
  struct Job {
    uint64_t id = 0;
    std::string head;
    std::string peer;
    int peer_port = 0;
  };

  bool process_and_close_socket(socket_t sock) override;  // adopts the socket, returns at once
  void PollLoop();
  void WorkLoop();
  void Wake();
  void Admit(int fd);
  void Read(uint64_t id, Connection& c);
  void Write(uint64_t id, Connection& c);
  void Refuse(uint64_t id, const char* status_line);
  void Close(uint64_t id);
  bool EvictOldest(const std::string* peer);

  const ServerLimits limits_;
  int wake_fd_ = -1;  // eventfd: adopted sockets, answers, stop
  std::thread poller_;
  std::vector<std::thread> workers_;

  std::mutex mutex_;  // guards the four below
  std::condition_variable work_;
  bool stopping_ = false;
  std::vector<int> adopted_;
  std::deque<Job> jobs_;
  std::vector<std::pair<uint64_t, std::string>> answers_;

  // The poll thread's own: connections by id, the oldest first.
  std::map<uint64_t, Connection> connections_;
  uint64_t next_id_ = 1;
};

}  // namespace gpushare::tools
