"""The camera bridge: reads each camera's stream (RTSP, HTTP snapshot URL, MJPEG, /dev/videoN) with OpenCV's FFmpeg
backend, gates on motion, and posts the best frame of a short burst through the camera intake, as that camera.
It talks to the web service over HTTP only (its cameras and their keys from ``/api/v1/bridge/cameras/``), so it runs
on any machine that can reach the web service and the cameras: ``manage.py run_bridge``."""
