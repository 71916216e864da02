"""An old caller of the Python service: thriftpy2's default client
(make_client: binary protocol, buffered transport) with the service's IDL.

usage: client.py HOST PORT < calls.jsonl

Each input line is one call on the same connection:
  {"call": "ping"}
  {"call": "createUser", "user": {"id": 5, "password": "123456", "state": 0}}
Each output line is its outcome: {"ok": RESULT} or
{"exception": {"type": N, "message": TEXT}} (a TApplicationException), or
{"closed": TEXT} when the connection failed (a new one is opened for the next
call).
"""
import json
import os
import sys

import thriftpy2
from thriftpy2.rpc import make_client
from thriftpy2.thrift import TApplicationException
from thriftpy2.transport import TTransportException

HERE = os.path.dirname(os.path.abspath(__file__))
user_thrift = thriftpy2.load(os.path.join(HERE, "user.thrift"), module_name="user_thrift")


def connect(host, port):
    return make_client(user_thrift.UserService, host, port, timeout=30000)


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    client = connect(host, port)
    for line in sys.stdin:
        if not line.strip():
            continue
        call = json.loads(line)
        try:
            if call["call"] == "ping":
                out = {"ok": client.ping()}
            else:
                out = {"ok": client.createUser(user_thrift.User(**call["user"]))}
        except TApplicationException as e:
            out = {"exception": {"type": e.type, "message": e.message}}
        except (TTransportException, OSError, EOFError) as e:
            out = {"closed": repr(e)}
            client.close()
            client = connect(host, port)
        print(json.dumps(out), flush=True)
    client.close()


if __name__ == "__main__":
    main()
