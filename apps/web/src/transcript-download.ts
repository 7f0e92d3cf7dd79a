/**
 * Hands a session's transcript to the user as a file (a Blob behind an object URL, no server
 * round trip), for `securechat verify-transcript FILE`.
 */
export function downloadTranscript(text: string, filename: string): void {
  const url = URL.createObjectURL(new Blob([text], { type: 'application/x-ndjson' }));
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  // After the click has started the download; revoking at once can cancel it in some browsers.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
