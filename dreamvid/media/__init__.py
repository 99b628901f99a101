"""Media I/O: stills, video probing and decoding, encoding to mp4/mov/mkv/gif, frame folders.

Arrays are RGB uint8 at every edge: (H, W, 3) frames, (H, W) alpha. BGR never leaves the
OpenCV calls. ffmpeg is the one bundled with imageio-ffmpeg; every process is reaped.
Imports only numpy, cv2, imageio_ffmpeg (lazily) and the standard library.
"""
from dreamvid.media.decode import read_frames, scaled_size
from dreamvid.media.encode import (DEFAULT_CRF, DEFAULT_PIX_FMT, FRAME_PATTERN, PIX_FMTS, VideoWriter, check_pix_fmt,
                                   encode_video, even_size, frame_path, write_frames_folder)
from dreamvid.media.images import read_image, read_image_alpha, write_image
from dreamvid.media.paths import (IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, VIDEO_OUTPUT_EXTENSIONS,
                                  check_output_path, output_kind)
from dreamvid.media.probe import VideoInfo, frame_time, has_audio, probe_video

__all__ = [
    "DEFAULT_CRF", "DEFAULT_PIX_FMT", "FRAME_PATTERN", "PIX_FMTS", "IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "VIDEO_OUTPUT_EXTENSIONS",
    "VideoInfo", "VideoWriter", "check_output_path", "check_pix_fmt", "encode_video", "even_size", "frame_path",
    "frame_time", "has_audio", "output_kind", "probe_video", "read_frames", "read_image",
    "read_image_alpha", "scaled_size", "write_frames_folder", "write_image",
]
