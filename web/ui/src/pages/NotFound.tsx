import { Link, location } from '../router';
import { useTitle } from '../components/ui';

export function NotFoundPage() {
  useTitle('Not found');
  return (
    <div class="page">
      <h1>Nothing here</h1>
      <p>
        The address <code>{location.value.pathname}</code> names no page of sluice.
      </p>
      <p>
        <Link href="/">Back to the DAGs</Link>
      </p>
    </div>
  );
}
