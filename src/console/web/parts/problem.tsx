/** A failure, in the server's words, announced to screen readers. */
export function Problem({ message }: { readonly message: string | undefined }) {
  if (message === undefined) return null;
  return (
    <p class="problem" role="alert">
      {message}
    </p>
  );
}
