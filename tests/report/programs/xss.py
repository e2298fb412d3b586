"""Every string the report shows is hostile: lock, thread and file names, argv."""
import sys
import threading
import time

import recorder

evil = recorder.name(threading.Lock(), "<script>window.__xss=1;alert(1)</script>")
other = recorder.name(threading.Lock(), '<img src=x onerror="window.__xss=2">')
quote = recorder.name(threading.Lock(), "</script><script>window.__xss=3</script>' \" &amp;")


def forward():
    with evil:
        with other:
            time.sleep(0.0005)


def backward():
    time.sleep(0.05)
    with other:
        if evil.acquire(timeout=5):
            evil.release()


def slow():
    with quote:
        time.sleep(0.12)


def main():
    ts = [threading.Thread(target=forward, name="<b onmouseover=window.__xss=4>fwd</b>"),
          threading.Thread(target=backward, name="</script><svg onload=window.__xss=5>"),
          threading.Thread(target=slow, name="{{7*7}} ${x} %s")]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=10)
    print(sys.argv[1:])


if __name__ == "__main__":
    main()
