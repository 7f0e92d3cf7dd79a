/**
 * Creating the PostgreSQL database named in DATABASE_URL when it does not exist yet, so that a
 * fresh server needs no step before `npm run db:migrate` or a service's start. Where the role
 * may not create databases, the error names the exact command an administrator runs instead.
 */
import { Client, type ClientConfig } from 'pg';

/** PostgreSQL's SQLSTATEs this module tells apart. */
const INVALID_CATALOG_NAME = '3D000'; // the database named on connect does not exist
const DUPLICATE_DATABASE = '42P04';
const UNIQUE_VIOLATION = '23505';
const INSUFFICIENT_PRIVILEGE = '42501';

/** Databases every cluster has, to connect to while the target does not exist yet. */
const MAINTENANCE_DATABASES = ['postgres', 'template1'] as const;

/** The database (and who and where) a postgres:// URL names, as `pg` reads it. */
export interface DatabaseAddress {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly database: string;
}

export function databaseAddress(url: string): DatabaseAddress {
  // pg's own reading of the URL and of its defaults (PGUSER, USER, ...): never connected.
  const { host, port, user = '', database } = new Client({ connectionString: url });
  // libpq's rule, which pg follows: no database in the URL means the user's name.
  return { host, port, user, database: database ?? user };
}

/** True for the error PostgreSQL answers a connection to a database that does not exist. */
export function isMissingDatabase(error: unknown): boolean {
  return sqlState(error) === INVALID_CATALOG_NAME;
}

/**
 * The database is absent and this role cannot create it. The message is the whole remedy:
 * the command to run, as a role that may, before starting again.
 */
export class DatabaseCreationError extends Error {
  override readonly name = 'DatabaseCreationError';
  readonly code = 'database_missing';

  constructor(
    readonly address: DatabaseAddress,
    reason: string,
  ) {
    const { host, port, user, database } = address;
    super(
      `database "${database}" does not exist on ${host}:${port} and could not be created ` +
        `as role "${user}" (${reason}). Create it as a role that may (a superuser or one ` +
        `with CREATEDB), then run this again:\n` +
        `  createdb -h ${shellWord(host)} -p ${port} -U postgres -O ${shellWord(user)} ${shellWord(database)}\n` +
        `or in psql: CREATE DATABASE ${quoteIdentifier(database)} OWNER ${quoteIdentifier(user)};`,
    );
  }
}

/**
 * Connects to the database at `url`, creating it first when it does not exist. Answers whether
 * this call created it (false also when a concurrent process did).
 */
export async function ensureDatabase(url: string, config: ClientConfig = {}): Promise<boolean> {
  const client = new Client({ connectionTimeoutMillis: 5_000, ...config, connectionString: url });
  try {
    await client.connect();
    return false;
  } catch (error) {
    if (!isMissingDatabase(error)) throw error;
    return createDatabase(url, config);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * CREATE DATABASE for the one `url` names, over a connection to a maintenance database on the
 * same server with the same credentials. Answers false when it exists already: instances
 * started together all try, and the losers of that race see duplicate_database (or, while the
 * winner's transaction commits, the catalog's unique index) and go on.
 */
export async function createDatabase(url: string, config: ClientConfig = {}): Promise<boolean> {
  const address = databaseAddress(url);
  const maintenance = await connectToMaintenance(url, config, address);
  try {
    // CREATE DATABASE takes no parameters: the name goes in as a quoted identifier.
    await maintenance.query(`CREATE DATABASE ${quoteIdentifier(address.database)}`);
    return true;
  } catch (error) {
    const state = sqlState(error);
    if (state === DUPLICATE_DATABASE) return false;
    if (state === UNIQUE_VIOLATION && constraintOf(error) === 'pg_database_datname_index') {
      return false;
    }
    if (state === INSUFFICIENT_PRIVILEGE) {
      throw new DatabaseCreationError(address, messageOf(error));
    }
    throw error;
  } finally {
    await maintenance.end().catch(() => undefined);
  }
}

async function connectToMaintenance(
  url: string,
  config: ClientConfig,
  address: DatabaseAddress,
): Promise<Client> {
  const reasons: string[] = [];
  for (const name of MAINTENANCE_DATABASES) {
    const maintenanceUrl = new URL(url);
    maintenanceUrl.pathname = `/${encodeURIComponent(name)}`;
    const client = new Client({
      connectionTimeoutMillis: 5_000,
      ...config,
      connectionString: maintenanceUrl.toString(),
    });
    try {
      await client.connect();
      return client;
    } catch (error) {
      await client.end().catch(() => undefined);
      reasons.push(`${name}: ${messageOf(error)}`);
    }
  }
  throw new DatabaseCreationError(
    address,
    `cannot connect to a maintenance database: ${reasons.join('; ')}`,
  );
}

/** A PostgreSQL identifier, double-quoted: any name, exactly as written. */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** A word for a POSIX shell: as is when it is plain, else single-quoted. */
function shellWord(word: string): string {
  return /^[A-Za-z0-9_./:@%+=-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function constraintOf(error: unknown): string | undefined {
  const constraint = (error as { constraint?: unknown } | null)?.constraint;
  return typeof constraint === 'string' ? constraint : undefined;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
