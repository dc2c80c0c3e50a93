// What a worker knows of a client connection, whichever protocol it speaks (HTTP/1.1, HTTP/2): it can be
// asked to drain or to close at once, and it sits on the worker's intrusive list (no allocation per
// connection for bookkeeping).
#pragma once

namespace edgeguard {

class DownstreamConnection {
  public:
    // Graceful shutdown: stop taking new requests, close once those in flight are answered.
    virtual void begin_drain() = 0;
    // Hard stop (the grace deadline passed): close at once, giving back what the connection owns; deletes it.
    virtual void close_now() = 0;

    DownstreamConnection* prev = nullptr;
    DownstreamConnection* next = nullptr;

  protected:
    ~DownstreamConnection() = default;
};

}  // namespace edgeguard
